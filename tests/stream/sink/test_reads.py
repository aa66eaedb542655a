"""Reads for other areas, on both backends."""

from __future__ import annotations

import pytest

from stream.sink.backend import ClickHouse
from stream.sink.reads import read_rated_reviews
from stream.sink.store import REVIEW_COLUMNS, ReviewStore, review_values
from tests.stream.sink.reviews import make_rows


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
