"""The replay generator: deterministic, and each malformed kind is rejected for its reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from model.corpus import SHIPPED_CORPUS
from stream.replay import (
    MALFORMED_KINDS,
    EventFactory,
    SourceReview,
    cycle_sources,
    read_corpus,
    read_jsonl,
)
from stream.validation import InvalidEvent, ValidReview, parse_review

LIMITS = {"max_text_chars": 300, "max_event_bytes": 4096}
SOURCE = SourceReview("物流很快，质量不错", "手机", 1)
NOW = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)


def test_every_malformed_kind_is_rejected_with_its_reason() -> None:
    factory = EventFactory(seed=3, malformed_share=1.0, **LIMITS)
    events = [factory.make(SOURCE, NOW) for _ in range(2 * len(MALFORMED_KINDS))]
    assert [e.expected_reason for e in events] == list(MALFORMED_KINDS) * 2
    for event in events:
        result = parse_review(event.value, **LIMITS)
        assert isinstance(result, InvalidEvent), event.expected_reason
        assert result.reason_code == event.expected_reason


def test_valid_events_pass_validation_and_are_keyed_by_product() -> None:
    factory = EventFactory(seed=1, id_prefix="x", **LIMITS)
    events = [factory.make(SOURCE, NOW) for _ in range(50)]
    assert len({e.review_id for e in events}) == 50
    for event in events:
        result = parse_review(event.value, **LIMITS)
        assert isinstance(result, ValidReview)
        assert event.key == result.event.product_id.encode()
        assert result.event.rating in (None, 4, 5)  # label 1: a positive rating when present
    manifest = json.loads(events[0].manifest_line())
    assert manifest["review_id"] == "x-00000000" and manifest["expected_reason"] is None


def test_same_seed_same_events() -> None:
    def run() -> list[bytes]:
        factory = EventFactory(seed=9, malformed_share=0.3, **LIMITS)
        sources = cycle_sources([SOURCE, SourceReview("太差了", "水果", 0)], 9)
        return [factory.make(next(sources), NOW).value for _ in range(40)]

    assert run() == run()


def test_shipped_corpus_reads_without_empty_reviews() -> None:
    reviews = read_corpus(SHIPPED_CORPUS)
    assert len(reviews) > 60_000
    assert all(r.text.strip() and "\ufeff" not in r.text for r in reviews)
    assert len({r.category for r in reviews}) == 10


def test_jsonl_source(tmp_path: Path) -> None:
    path = tmp_path / "reviews.jsonl"
    full = {"schema_version": 1, "review_id": "keep-me", "product_id": "p", "category": "书籍",
            "user_id": "u", "text": "好书", "created_at": "2026-11-27T05:00:00Z"}  # fmt: skip
    path.write_text(
        json.dumps({"text": "还行", "category": "书籍"}) + "\n\n" + json.dumps(full) + "\n",
        encoding="utf-8",
    )
    sources = read_jsonl(path)
    factory = EventFactory(**LIMITS)
    events = [factory.make(source, NOW) for source in sources]
    assert json.loads(events[1].value)["review_id"] == "keep-me"
    assert isinstance(parse_review(events[0].value, **LIMITS), ValidReview)
    path.write_text("[1]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="text"):
        read_jsonl(path)
