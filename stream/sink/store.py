"""The ``reviews`` table: its columns, writes of classified reviews (idempotent by
review_id), and the reads tests and tools need.

Exact counts under redelivery rest on three things:

* Writes never trust a read alone. On ClickHouse >= 22.2 and chdb, a batch is written with a
  deterministic ``insert_deduplication_token`` (its offset range per topic partition), and
  every table on the path deduplicates by it (migration 0040): a retry completes what a
  half-applied insert missed and drops what landed. On 18.16, which has no tokens, the store
  skips review_ids already stored, except those of its own write that failed: a retry sends
  them again, so a half-applied insert is repaired there too.
* Count aggregates are ``uniqExact`` states of review_id, so a copy that slips through (a
  batch re-read with other boundaries, two writers across a rebalance) is not counted twice.
* A review whose copies disagree (a new model version, or int8 scores that moved with the
  batch-mates) counts once: readers take the total over every sentiment and resolve the
  sentiment most-negative-first (``RESOLVED_SENTIMENT_COUNTS``), as the alert engine does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from stream.sink.backend import ClickHouse
from stream.sink.sql import chunks, datetime_literal, in_list
from stream.sink.values import as_utc
from stream.sink.version import INSERT_TOKENS, at_least

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
DEDUPLICATION = {"insert_deduplicate": 1, "deduplicate_blocks_in_dependent_materialized_views": 1}

RESOLVED_SENTIMENT_COUNTS = """uniqExactMerge(reviews) AS total,
       uniqExactMergeIf(reviews, sentiment = 'negative') AS negative,
       uniqExactMergeIf(reviews, sentiment != 'positive') - negative AS neutral,
       total - negative - neutral AS positive"""
"""Per group of ``sentiment_minute`` rows: distinct reviews, and each counted under one
sentiment when its copies disagree (negative before neutral before positive, the order the
alert engine counts negatives in)."""


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
    """One row of ``sentiment_minute`` merged over sentiments: each review counted once, under
    one sentiment (``RESOLVED_SENTIMENT_COUNTS``)."""

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


def month_of(moment: datetime) -> int:
    """``YYYYMM`` of a UTC moment: the partition of every table a review reaches."""
    moment = as_utc(moment)
    return moment.year * 100 + moment.month


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

    def __init__(self, ch: ClickHouse, *, insert_tokens: bool | None = None) -> None:
        self.ch = ch
        self._insert_tokens = insert_tokens  # None: decided by the server's version
        self._unconfirmed: set[str] = set()  # ids of a write that raised: resent, not skipped

    @property
    def insert_tokens(self) -> bool:
        """Whether writes with a token use ClickHouse's insert deduplication (>= 22.2)."""
        if self._insert_tokens is None:
            self._insert_tokens = at_least(self.ch, INSERT_TOKENS)
        return self._insert_tokens

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

    def write_reviews(
        self, rows: Sequence[Mapping[str, Any] | object], *, token: str | None = None
    ) -> int:
        """Store ``rows`` once each; return how many were sent to ClickHouse.

        Rows are mappings or objects with the :data:`REVIEW_COLUMNS` (see
        :func:`review_values`). Duplicates inside ``rows`` keep their first occurrence.
        One insert per month of ``created_at`` (the tables' partition), so no insert exceeds
        ``max_partitions_per_insert_block`` however old the reviews are.

        With ``token`` (the same for every retry of one batch) on a server that has insert
        deduplication, every row is sent and ClickHouse drops what it already has, per table.
        Otherwise review_ids already stored are skipped, except those of a write of this
        store that raised: the retry resends them, so the views a failed insert missed get
        them (their counts are ``uniqExact``, a second copy changes nothing).
        """
        batch: dict[str, list[Any]] = {}
        for row in rows:
            values = review_values(row)
            batch.setdefault(values[_REVIEW_ID], values)
        if not batch:
            return 0
        if token and self.insert_tokens:
            self._insert_by_month(list(batch.values()), token)
            return len(batch)
        existing = self.existing_ids(list(batch), [v[_CREATED_AT] for v in batch.values()])
        fresh = [
            values
            for review_id, values in batch.items()
            if review_id not in existing or review_id in self._unconfirmed
        ]
        ids = {values[_REVIEW_ID] for values in fresh}
        self._unconfirmed |= ids
        self._insert_by_month(fresh, None)
        self._unconfirmed -= ids
        return len(fresh)

    def _insert_by_month(self, rows: list[list[Any]], token: str | None) -> None:
        by_month: dict[int, list[list[Any]]] = {}
        for values in rows:
            by_month.setdefault(month_of(values[_CREATED_AT]), []).append(values)
        for month, block in sorted(by_month.items()):
            settings = (
                {"insert_deduplication_token": f"{token}|{month}", **DEDUPLICATION}
                if token
                else None
            )
            self.ch.insert("reviews", REVIEW_COLUMNS, block, settings)

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
            f"""
SELECT minute, product_id, category,
       sum(total), sum(negative), sum(neutral), sum(positive), sum(conf),
       sumIf(total, rating > 0), sum(total * rating)
FROM (
    SELECT minute, product_id, category, rating,
           {RESOLVED_SENTIMENT_COUNTS},
           sumMerge(confidence_sum) AS conf
    FROM sentiment_minute
    GROUP BY minute, product_id, category, rating
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
