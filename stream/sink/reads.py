"""Reads of stored reviews that other areas need (training), so they never write SQL."""

from __future__ import annotations

from stream.sink.backend import ClickHouse


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
