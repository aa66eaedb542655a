"""Writes of classified reviews, idempotent by review_id, and the reads tests and tools need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from stream.rows import REVIEW_COLUMNS  # the one definition of the reviews row
from stream.sink.backend import ClickHouse
from stream.sink.values import as_utc, quote

# ids per existence query: 18.16's max_query_size is 256 KiB.
ID_CHUNK = 2000


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
    return (
        f" AND created_at >= toDateTime('{start:%Y-%m-%d %H:%M:%S}', 'UTC')"
        f" AND created_at < toDateTime('{end:%Y-%m-%d %H:%M:%S}', 'UTC')"
    )


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
        for start in range(0, len(review_ids), ID_CHUNK):
            chunk = review_ids[start : start + ID_CHUNK]
            in_list = ", ".join(quote(review_id) for review_id in chunk)
            rows = self.ch.query(
                f"SELECT review_id FROM reviews WHERE review_id IN ({in_list}){scope}"
            )
            found.update(row[0] for row in rows)
        return found

    def write_reviews(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert the rows whose review_id is not stored yet; return how many were inserted.

        Duplicates inside ``rows`` keep their first occurrence. Checking first means the
        materialized views see each review once, so even the sums in the aggregates stay
        exact under redelivery (one writer per review_id: the partition's owner).
        """
        batch: dict[str, Mapping[str, Any]] = {}
        for row in rows:
            batch.setdefault(row["review_id"], row)
        if not batch:
            return 0
        existing = self.existing_ids(list(batch), [row["created_at"] for row in batch.values()])
        fresh = [row for review_id, row in batch.items() if review_id not in existing]
        if fresh:
            self.ch.insert(
                "reviews", REVIEW_COLUMNS, [[row[c] for c in REVIEW_COLUMNS] for row in fresh]
            )
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
