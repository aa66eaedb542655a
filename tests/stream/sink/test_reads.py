"""Reads for other areas, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stream.sink.backend import ClickHouse
from stream.sink.reads import read_rated_reviews, read_rated_since
from stream.sink.store import REVIEW_COLUMNS, ReviewStore, review_values
from tests.stream.sink.reviews import START, make_rows


@pytest.mark.clickhouse
def test_rated_reviews_once_each_by_review_id(ch: ClickHouse) -> None:
    rows = make_rows(60)
    rows[0]["rating"], rows[1]["rating"] = None, 4
    ReviewStore(ch).write_reviews(rows[::-1])
    # A duplicate that bypassed the store (two writers at once): FINAL reads it once.
    ch.insert("reviews", REVIEW_COLUMNS, [review_values(rows[1])])
    want = [(r["text"], r["category"], r["rating"]) for r in rows if r["rating"] is not None]
    assert read_rated_reviews(ch) == want
    assert read_rated_reviews(ch, limit=3) == want[:3]


@pytest.mark.clickhouse
def test_rated_reviews_since_a_time_oldest_first(ch: ClickHouse) -> None:
    rows = make_rows(40)
    for index, row in enumerate(rows):  # stored in two sessions, ten minutes apart
        row["processed_at"] = START + timedelta(minutes=10 if index < 25 else 20)
    ReviewStore(ch).write_reviews(rows)
    rated = [r for r in rows if r["rating"] is not None]
    everything = read_rated_since(ch)
    assert [r.review_id for r in everything] == [
        r["review_id"] for r in sorted(rated, key=lambda r: (r["created_at"], r["review_id"]))
    ]
    first = everything[0]
    source = next(r for r in rows if r["review_id"] == first.review_id)
    assert (first.text, first.category, first.rating) == (
        source["text"],
        source["category"],
        source["rating"],
    )
    assert (first.sentiment, first.model_version) == (source["sentiment"], "test-1")
    assert first.created_at == source["created_at"] and first.created_at.tzinfo is not None
    later = read_rated_since(ch, since=START + timedelta(minutes=15))
    assert {r.review_id for r in later} == {
        r["review_id"] for r in rows[25:] if r["rating"] is not None
    }
    assert all(r.processed_at == START + timedelta(minutes=20) for r in later)
    assert len(read_rated_since(ch, limit=5)) == 5
