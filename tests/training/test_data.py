import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from model.corpus import SHIPPED_CORPUS
from stream.config import ClickHouseConfig
from training.data import (
    Review,
    label_from_value,
    load_clickhouse,
    load_file,
    review_from_record,
    reviews_sha256,
)


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (1, "positive"),
        ("1", "positive"),
        (0, "negative"),
        ("0", "negative"),
        ("Neutral", "neutral"),
        ("positive", "positive"),
    ],
)
def test_binary_labels_and_names(value: object, label: str) -> None:
    assert label_from_value(value) == label


def test_a_label_wins_over_a_rating_and_category_defaults() -> None:
    review = review_from_record({"review": "好", "label": "0", "rating": 5})
    assert review == Review(text="好", label="negative", category="unknown")
    assert review_from_record({"text": "一般", "rating": 3, "cat": "酒店"}).category == "酒店"
    with pytest.raises(ValueError):
        review_from_record({"text": "no label"})
    with pytest.raises(ValueError):
        review_from_record({"label": 1})


def test_csv_and_jsonl_files_with_labels_or_ratings(tmp_path: Path) -> None:
    csv_path = tmp_path / "r.csv"
    csv_path.write_text(
        "\ufeffcat,label,review\n书籍,1,很好看\n书籍,0,太无聊\n书籍,x,坏行\n", encoding="utf-8"
    )
    reviews, skipped = load_file(csv_path)
    assert [r.label for r in reviews] == ["positive", "negative"] and skipped == 1
    jsonl = tmp_path / "r.jsonl"
    rows = [{"text": "一般般", "rating": 3, "category": "手机"}, {"text": "差", "rating": 1}]
    jsonl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    reviews, skipped = load_file(jsonl)
    assert [(r.label, r.category) for r in reviews] == [
        ("neutral", "手机"),
        ("negative", "unknown"),
    ]
    with pytest.raises(ValueError):
        load_file(jsonl.with_suffix(".txt").write_text("x") and jsonl.with_suffix(".txt"))


def test_the_shipped_corpus_loads_in_full() -> None:
    reviews, skipped = load_file(SHIPPED_CORPUS)
    assert len(reviews) + skipped == 62774
    assert {r.label for r in reviews} == {"negative", "positive"}
    assert len({r.category for r in reviews}) == 10


def test_review_hash_ignores_order() -> None:
    a = [Review("好", "positive", "x"), Review("差", "negative", "y")]
    assert reviews_sha256(a) == reviews_sha256(a[::-1])
    assert reviews_sha256(a) != reviews_sha256(a[:1])


def test_rated_reviews_from_clickhouse_are_read_through_the_sink_seam(monkeypatch) -> None:
    """``load_clickhouse`` connects with its section, reads through ``read_rated_reviews``,
    labels by rating and closes the connection."""
    from stream.sink import connection, reads

    config = ClickHouseConfig(clickhouse_database="rated")
    seen: dict[str, object] = {}

    def connect(given: ClickHouseConfig) -> SimpleNamespace:
        seen["config"] = given
        return SimpleNamespace(close=lambda: seen.setdefault("closed", True))

    def read_rated_reviews(clickhouse: object, *, limit: int | None = None) -> list:
        seen["limit"] = limit
        return [("很好", "书籍", 5), ("一般", None, 3), ("太差", "酒店", 1)]

    monkeypatch.setattr(connection, "connect", connect)
    monkeypatch.setattr(reads, "read_rated_reviews", read_rated_reviews)
    reviews = load_clickhouse(config, limit=10)
    assert reviews == [
        Review("很好", "positive", "书籍"),
        Review("一般", "neutral", "unknown"),
        Review("太差", "negative", "酒店"),
    ]
    assert seen == {"config": config, "limit": 10, "closed": True}
