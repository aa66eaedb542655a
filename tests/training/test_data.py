import json
from pathlib import Path

import pytest

from training.data import (
    Review,
    label_from_rating,
    label_from_value,
    load_file,
    review_from_record,
    reviews_sha256,
)


@pytest.mark.parametrize(
    ("rating", "label"),
    [
        (5, "positive"),
        (4, "positive"),
        ("4", "positive"),
        (3, "neutral"),
        (2, "negative"),
        (1, "negative"),
        (1.0, "negative"),
    ],
)
def test_ratings_map_to_labels(rating: object, label: str) -> None:
    assert label_from_rating(rating) == label


@pytest.mark.parametrize("rating", [0, 6, 3.5, -1, "five", None, True, ""])
def test_out_of_range_or_malformed_ratings_are_refused(rating: object) -> None:
    with pytest.raises(ValueError):
        label_from_rating(rating)


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
    from training.data import DEFAULT_CORPUS

    reviews, skipped = load_file(DEFAULT_CORPUS)
    assert len(reviews) + skipped == 62774
    assert {r.label for r in reviews} == {"negative", "positive"}
    assert len({r.category for r in reviews}) == 10


def test_review_hash_ignores_order() -> None:
    a = [Review("好", "positive", "x"), Review("差", "negative", "y")]
    assert reviews_sha256(a) == reviews_sha256(a[::-1])
    assert reviews_sha256(a) != reviews_sha256(a[:1])
