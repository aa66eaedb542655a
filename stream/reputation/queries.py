"""ClickHouse reads and writes of the alert engine. Blocking: call from an executor.

The SQL runs unchanged on ClickHouse 18.16 and 26.x: no CTEs, no window functions,
timestamps as ``toDateTime('...', 'UTC')`` literals. Counts are exact after duplicate
delivery: the aggregates hold ``uniqExact`` states of review_id, merged here per minute (a
review lives in one minute) and summed in Python; ``alerts`` is read by
``argMax(..., version)``. Event time is ``created_at``, bucketed by minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from stream.reputation.alerts import ALERT_COLUMNS, PENDING
from stream.reputation.grid import ProductHistory, ProductMinutes, floor_minute
from stream.reputation.incidents import OpenIncident
from stream.reputation.lexicon import KeywordStat, Lexicon
from stream.reputation.rules import AlertKind, SubjectType
from stream.sink.sql import datetime_literal as ts
from stream.sink.sql import in_list, quote
from stream.sink.values import as_utc

if TYPE_CHECKING:
    from stream.sink.backend import ClickHouse

SENTIMENT_TABLE = "sentiment_minute"
KEYWORD_TABLE = "negative_keyword_minute"
COMPLAINT_TABLE = "complaint_minute"  # curated complaint keywords per minute (reports)
REVIEWS_TABLE = "reviews"
ALERTS_TABLE = "alerts"
PROGRESS_TABLE = "alert_progress"
PROGRESS_NAME = "alert-engine"
TOP_COMPLAINTS = 5


def complaint_condition(lexicon: Lexicon) -> str:
    """SQL over ``negative_keyword_minute``: the keyword row counts as a complaint."""
    pairs = lexicon.pairs()
    if not pairs:
        return "curated = 1"
    tuples = ", ".join(f"({quote(category)}, {quote(word)})" for category, word in pairs)
    return f"(curated = 1 OR (category, keyword) IN ({tuples}))"


def fetch_watermark(ch: ClickHouse, now: datetime) -> datetime | None:
    """The newest minute bucket with processed reviews, not after ``now``'s minute."""
    [(newest, count)] = ch.query(
        f"SELECT max(minute), count() FROM {SENTIMENT_TABLE} "
        f"WHERE minute <= {ts(floor_minute(now))}"
    )
    return as_utc(newest) if count else None


def _series_sql(table: str, start: datetime, end: datetime, bucket: str, where: str = "") -> str:
    """Per product: arrays of bucket (Unix seconds), reviews and negative reviews (or, for
    the keyword table, complaint reviews), merged per minute first (a review lives in one
    minute). One row per product keeps the result small for either backend to decode."""
    extra = f" AND {where}" if where else ""
    counts = (
        "toUInt32(uniqExactMerge(reviews)) AS t, "
        "toUInt32(uniqExactMergeIf(reviews, sentiment = 'negative')) AS n"
        if table == SENTIMENT_TABLE
        else "toUInt32(uniqExactMerge(reviews)) AS t, toUInt32(0) AS n"
    )
    return f"""
SELECT product_id, any(cc), groupArray(b), groupArray(tt), groupArray(nn)
FROM (
    SELECT product_id, b, any(c) AS cc, sum(t) AS tt, sum(n) AS nn
    FROM (
        SELECT product_id, any(category) AS c, toUInt32({bucket}) AS b, {counts}
        FROM {table}
        WHERE minute >= {ts(start)} AND minute < {ts(end)}{extra}
        GROUP BY product_id, minute
    )
    GROUP BY product_id, b
)
GROUP BY product_id
"""


def fetch_minutes(
    ch: ClickHouse, start: datetime, end: datetime, lexicon: Lexicon
) -> list[ProductMinutes]:
    """Per product and minute in ``[start, end)``: reviews, negative reviews, and negative
    reviews with complaint keywords (``lexicon``)."""
    complaints = {
        product_id: (minutes, counts)
        for product_id, _, minutes, counts, _ in ch.query(
            _series_sql(KEYWORD_TABLE, start, end, "minute", complaint_condition(lexicon))
        )
    }
    return [
        ProductMinutes(
            product_id,
            category,
            minutes,
            total,
            negative,
            *complaints.get(product_id, ((), ())),
        )
        for product_id, category, minutes, total, negative in ch.query(
            _series_sql(SENTIMENT_TABLE, start, end, "minute")
        )
    ]


def fetch_hours(
    ch: ClickHouse, start: datetime, end: datetime
) -> dict[datetime, dict[str, ProductHistory]]:
    """Per hour in ``[start, end)`` (hour-aligned) and product: reviews and negative ones."""
    hours: dict[int, dict[str, ProductHistory]] = {}
    for product_id, category, stamps, total, negative in ch.query(
        _series_sql(SENTIMENT_TABLE, start, end, "toStartOfHour(minute)")
    ):
        for stamp, t, n in zip(stamps, total, negative, strict=True):
            hours.setdefault(stamp, {})[product_id] = ProductHistory(category, int(t), int(n))
    return {as_utc(datetime.fromtimestamp(h, UTC)): v for h, v in hours.items()}


def fetch_hour_complaints(
    ch: ClickHouse, start: datetime, end: datetime, lexicon: Lexicon
) -> dict[datetime, dict[str, int]]:
    """Per hour in ``[start, end)`` and product: negative reviews with complaint keywords."""
    hours: dict[int, dict[str, int]] = {}
    for product_id, _, stamps, counts, _ in ch.query(
        _series_sql(
            KEYWORD_TABLE, start, end, "toStartOfHour(minute)", complaint_condition(lexicon)
        )
    ):
        for stamp, count in zip(stamps, counts, strict=True):
            hours.setdefault(stamp, {})[product_id] = int(count)
    return {as_utc(datetime.fromtimestamp(h, UTC)): v for h, v in hours.items()}


def fetch_keyword_stats(
    ch: ClickHouse, start: datetime, end: datetime, min_reviews: int
) -> tuple[list[KeywordStat], dict[str, tuple[int, int]]]:
    """Keyword counts per category (reviews carrying it, negative ones) for keywords with at
    least ``min_reviews`` negative reviews, and each category's (negative, all) reviews, over
    ``[start, end)`` of event time. Reads ``reviews`` without FINAL: a rare duplicate does
    not move a lift."""
    where = f"created_at >= {ts(start)} AND created_at < {ts(end)}"
    stats = [
        KeywordStat(category, keyword, int(negative), int(total))
        for category, keyword, negative, total in ch.query(
            f"""
SELECT category, keyword, countIf(sentiment = 'negative') AS negative, count() AS total
FROM {REVIEWS_TABLE}
ARRAY JOIN keywords AS keyword
WHERE {where}
GROUP BY category, keyword
HAVING negative >= {int(min_reviews)}
"""
        )
    ]
    totals = {
        category: (int(negative), int(total))
        for category, negative, total in ch.query(
            f"""
SELECT category, countIf(sentiment = 'negative'), count()
FROM {REVIEWS_TABLE}
WHERE {where}
GROUP BY category
"""
        )
    }
    return stats, totals


def fetch_top_complaints(
    ch: ClickHouse, product_id: str, start: datetime, end: datetime, lexicon: Lexicon
) -> list[tuple[str, int]]:
    """The product's most frequent complaint keywords in ``[start, end)``."""
    rows = ch.query(
        f"""
SELECT keyword, sum(n) AS reviews
FROM (
    SELECT keyword, minute, uniqExactMerge(reviews) AS n
    FROM {KEYWORD_TABLE}
    WHERE product_id = {quote(product_id)} AND minute >= {ts(floor_minute(start))}
      AND minute < {ts(end)} AND {complaint_condition(lexicon)}
    GROUP BY keyword, minute
)
GROUP BY keyword
ORDER BY reviews DESC, keyword
LIMIT {TOP_COMPLAINTS}
"""
    )
    return [(keyword, int(n)) for keyword, n in rows]


def fetch_samples(
    ch: ClickHouse,
    subject_type: SubjectType,
    subject: str,
    kind: AlertKind,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[str]:
    """Newest review ids behind a finding: negative ones (with complaint keywords for a
    complaint surge) of the product or category in ``[start, end)`` of event time."""
    if limit <= 0 or subject_type is SubjectType.PIPELINE:
        return []
    column = "product_id" if subject_type is SubjectType.PRODUCT else "category"
    complaint = "AND notEmpty(complaint_keywords)" if kind is AlertKind.COMPLAINT_SURGE else ""
    rows = ch.query(
        f"""
SELECT review_id FROM {REVIEWS_TABLE} FINAL
WHERE {column} = {quote(subject)} AND sentiment = 'negative' {complaint}
  AND created_at >= {ts(start)} AND created_at < {ts(end)}
ORDER BY created_at DESC, review_id
LIMIT {int(limit)}
"""
    )
    return [row[0] for row in rows]


@dataclass(frozen=True)
class StoredAlert:
    """An alerts-table row as the engine needs it back."""

    alert: OpenIncident
    status: str
    payload: str


def fetch_open_alerts(ch: ClickHouse, seen_since: datetime) -> list[StoredAlert]:
    """Alerts last seen (event time) since ``seen_since`` and any still pending.

    The newest version of each alert is picked with ``argMax(..., version)`` rather than
    ``FINAL ... WHERE``: old servers may apply the WHERE before collapsing versions, which
    would resurrect a superseded "pending" version of an alert published long ago."""
    rows = ch.query(
        f"""
SELECT alert_id,
       argMax(kind, version), argMax(subject_type, version), argMax(subject, version),
       argMax(raised_at, version), argMax(last_seen_at, version) AS seen,
       argMax(status, version) AS current_status, argMax(payload, version)
FROM {ALERTS_TABLE}
WHERE alert_id IN (
    SELECT alert_id FROM {ALERTS_TABLE}
    WHERE last_seen_at >= {ts(seen_since)} OR status = {quote(PENDING)}
)
GROUP BY alert_id
HAVING seen >= {ts(seen_since)} OR current_status = {quote(PENDING)}
ORDER BY alert_id
"""
    )
    return [
        StoredAlert(
            alert=OpenIncident(
                alert_id=row[0],
                kind=AlertKind(row[1]),
                subject_type=SubjectType(row[2]),
                subject=row[3],
                raised_at=as_utc(row[4]),
                last_seen_at=as_utc(row[5]),
            ),
            status=row[6],
            payload=row[7],
        )
        for row in rows
    ]


def fetch_alerts(ch: ClickHouse, alert_ids: Sequence[str]) -> list[StoredAlert]:
    """The newest version of the given alerts (any age)."""
    if not alert_ids:
        return []
    rows = ch.query(
        f"""
SELECT alert_id, argMax(kind, version), argMax(subject_type, version),
       argMax(subject, version), argMax(raised_at, version), argMax(last_seen_at, version),
       argMax(status, version), argMax(payload, version)
FROM {ALERTS_TABLE}
WHERE alert_id IN {in_list(alert_ids)}
GROUP BY alert_id
"""
    )
    return [
        StoredAlert(
            OpenIncident(
                row[0],
                AlertKind(row[1]),
                SubjectType(row[2]),
                row[3],
                as_utc(row[4]),
                as_utc(row[5]),
            ),
            row[6],
            row[7],
        )
        for row in rows
    ]


def write_alert_rows(ch: ClickHouse, rows: Sequence[dict]) -> None:
    if rows:
        ch.insert(ALERTS_TABLE, ALERT_COLUMNS, [[row[c] for c in ALERT_COLUMNS] for row in rows])


def fetch_progress(ch: ClickHouse) -> datetime | None:
    """The last minute bucket the engine evaluated (newest of any evaluator), or None."""
    [(until, count)] = ch.query(
        f"SELECT max(evaluated_until), count() FROM {PROGRESS_TABLE} "
        f"WHERE name = {quote(PROGRESS_NAME)}"
    )
    return as_utc(until) if count else None


def write_progress(ch: ClickHouse, evaluated_until: datetime, now: datetime, version: int) -> None:
    ch.insert(
        PROGRESS_TABLE,
        ("name", "evaluated_until", "updated_at", "version"),
        [[PROGRESS_NAME, floor_minute(evaluated_until), now.replace(microsecond=0), version]],
    )


def hour_span(start: datetime, hours: int) -> list[datetime]:
    return [start + timedelta(hours=i) for i in range(hours)]
