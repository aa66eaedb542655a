"""Reads of stored reviews that other areas need (training), so they never write SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stream.sink.backend import ClickHouse
from stream.sink.sql import datetime_literal


def read_rated_reviews(
    clickhouse: ClickHouse, *, limit: int | None = None
) -> list[tuple[str, str | None, int]]:
    """``(text, category, rating)`` of every review with a rating (``reviews FINAL``, so
    each review once), ordered by review_id; at most ``limit`` of them when it is given
    and non-zero."""
    sql = "SELECT text, category, rating FROM reviews FINAL WHERE rating IS NOT NULL"
    sql += " ORDER BY review_id"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [(text, category, int(rating)) for text, category, rating in clickhouse.query(sql)]


@dataclass(frozen=True)
class RatedReview:
    """A stored review with a rating, as retraining reads it."""

    review_id: str
    text: str
    category: str
    rating: int
    sentiment: str  # what the serving model said
    model_version: str
    created_at: datetime  # the review's own time (aware UTC)
    processed_at: datetime  # when the stream stored it


def read_rated_since(
    clickhouse: ClickHouse, *, since: datetime | None = None, limit: int | None = None
) -> list[RatedReview]:
    """Reviews with a rating stored (``processed_at``) at or after ``since`` (all of them
    when None), each once (``FINAL``), oldest first by ``created_at`` then ``review_id``; the
    first ``limit`` of them when it is given and non-zero."""
    sql = (
        "SELECT review_id, text, category, rating, sentiment, model_version, created_at, "
        "processed_at FROM reviews FINAL WHERE rating IS NOT NULL"
    )
    if since is not None:
        sql += f" AND processed_at >= {datetime_literal(since)}"
    sql += " ORDER BY created_at, review_id"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [
        RatedReview(rid, text, category, int(rating), str(sentiment), version, created, processed)
        for rid, text, category, rating, sentiment, version, created, processed in (
            clickhouse.query(sql)
        )
    ]
