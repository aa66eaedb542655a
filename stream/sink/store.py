"""The ``reviews`` table: its columns, writes of classified reviews (idempotent by
review_id), and the reads tests and tools need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from stream.sink.backend import ClickHouse
from stream.sink.sql import chunks, datetime_literal, in_list
from stream.sink.values import as_utc

# The columns of ``reviews`` (migration 0001, token counts from 0020), in insert order. A
# review row is a mapping with these keys or an object with these attributes
# (``stream.rows.ReviewRow``); the columns added later may be left out (see REVIEW_DEFAULTS).
REVIEW_COLUMNS: tuple[str, ...] = (
    "review_id",
    "product_id",
    "category",
    "user_id",
    "rating",
    "text",
    "sentiment",
    "confidence",
    "prob_negative",
    "prob_neutral",
    "prob_positive",
    "keywords",
    "complaint_keywords",
    "model_version",
    "created_at",
    "processed_at",
    "tokens",
    "unknown_tokens",
)
# Columns added after 0001 and their defaults (the table's): a row without them gets these.
REVIEW_DEFAULTS: dict[str, Any] = {"tokens": 0, "unknown_tokens": 0}
_REVIEW_ID = REVIEW_COLUMNS.index("review_id")
_CREATED_AT = REVIEW_COLUMNS.index("created_at")


def review_values(row: Mapping[str, Any] | object) -> list[Any]:
    """A review row's values in :data:`REVIEW_COLUMNS` order, read from a mapping's keys or
    else from the object's attributes (:data:`REVIEW_DEFAULTS` for those it lacks)."""
    if isinstance(row, Mapping):
        return [
            row.get(column, REVIEW_DEFAULTS[column]) if column in REVIEW_DEFAULTS else row[column]
            for column in REVIEW_COLUMNS
        ]
    return [
        getattr(row, column, REVIEW_DEFAULTS[column])
        if column in REVIEW_DEFAULTS
        else getattr(row, column)
        for column in REVIEW_COLUMNS
    ]


@dataclass(frozen=True)
class MinuteCounts:
    """One row of ``sentiment_minute`` merged over sentiments."""

    minute: datetime
    product_id: str
    category: str
    reviews: int
    negative: int
    neutral: int
    positive: int
    confidence_sum: float
    rated: int
    rating_sum: int


def month_scope(created: Sequence[datetime]) -> str:
    """``AND created_at`` bounds covering the whole UTC months of ``created``."""
    first = min(as_utc(moment) for moment in created)
    last = max(as_utc(moment) for moment in created)
    start = first.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = last.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)
    end = end.replace(day=1)
    return f" AND created_at >= {datetime_literal(start)} AND created_at < {datetime_literal(end)}"


class ReviewStore:
    """The ``reviews`` table and its aggregates on one ClickHouse backend. Blocking."""

    def __init__(self, ch: ClickHouse) -> None:
        self.ch = ch

    def existing_ids(
        self, review_ids: Sequence[str], created: Sequence[datetime] | None = None
    ) -> set[str]:
        """The review_ids already stored. With ``created`` (the rows' created_at), only the
        months those fall in are searched: exactly the partitions the rows would land in,
        the same scope ReplacingMergeTree deduplicates in, so nothing is lost, and the
        check reads one month of ids instead of the whole table."""
        scope = month_scope(created) if created else ""
        found: set[str] = set()
        for chunk in chunks(review_ids):
            rows = self.ch.query(
                f"SELECT review_id FROM reviews WHERE review_id IN {in_list(chunk)}{scope}"
            )
            found.update(row[0] for row in rows)
        return found

    def write_reviews(self, rows: Sequence[Mapping[str, Any] | object]) -> int:
        """Insert the rows whose review_id is not stored yet; return how many were inserted.

        Rows are mappings or objects with the :data:`REVIEW_COLUMNS` (see
        :func:`review_values`). Duplicates inside ``rows`` keep their first occurrence.
        Checking first means the materialized views see each review once, so even the sums
        in the aggregates stay exact under redelivery (one writer per review_id: the
        partition's owner).
        """
        batch: dict[str, list[Any]] = {}
        for row in rows:
            values = review_values(row)
            batch.setdefault(values[_REVIEW_ID], values)
        if not batch:
            return 0
        existing = self.existing_ids(list(batch), [v[_CREATED_AT] for v in batch.values()])
        fresh = [values for review_id, values in batch.items() if review_id not in existing]
        if fresh:
            self.ch.insert("reviews", REVIEW_COLUMNS, fresh)
        return len(fresh)

    def count_final(self) -> int:
        return int(self.ch.query("SELECT count() FROM reviews FINAL")[0][0])

    def read_reviews(self) -> list[dict[str, Any]]:
        """Every stored review (FINAL), ordered by review_id, as row dicts."""
        rows = self.ch.query(
            f"SELECT {', '.join(REVIEW_COLUMNS)} FROM reviews FINAL ORDER BY review_id"
        )
        return [dict(zip(REVIEW_COLUMNS, row, strict=True)) for row in rows]

    def minute_counts(self) -> list[MinuteCounts]:
        """Per minute, product and category, ordered by those keys."""
        rows = self.ch.query(
            """
SELECT minute, product_id, category,
       sum(n), sumIf(n, sentiment = 'negative'), sumIf(n, sentiment = 'neutral'),
       sumIf(n, sentiment = 'positive'), sum(conf), sumIf(n, rating > 0), sum(n * rating)
FROM (
    SELECT minute, product_id, category, sentiment, rating, uniqExactMerge(reviews) AS n,
           sumMerge(confidence_sum) AS conf
    FROM sentiment_minute
    GROUP BY minute, product_id, category, sentiment, rating
)
GROUP BY minute, product_id, category
ORDER BY minute, product_id, category
"""
        )
        return [
            MinuteCounts(
                minute=row[0],
                product_id=row[1],
                category=row[2],
                reviews=int(row[3]),
                negative=int(row[4]),
                neutral=int(row[5]),
                positive=int(row[6]),
                confidence_sum=float(row[7]),
                rated=int(row[8]),
                rating_sum=int(row[9]),
            )
            for row in rows
        ]

    def negative_keyword_counts(self) -> list[tuple[datetime, str, str, str, bool, int]]:
        """(hour, product_id, category, keyword, is_complaint, distinct negative reviews)."""
        rows = self.ch.query(
            """
SELECT hour, product_id, category, keyword, is_complaint, uniqExactMerge(reviews) AS n
FROM negative_keywords_hour
GROUP BY hour, product_id, category, keyword, is_complaint
ORDER BY hour, product_id, category, keyword, is_complaint
"""
        )
        return [(r[0], r[1], r[2], r[3], bool(r[4]), int(r[5])) for r in rows]
