"""ClickHouse reads and writes of the alert engine. Blocking: call from an executor.

The SQL runs unchanged on ClickHouse 18.16 and 26.x: no CTEs, no window functions,
timestamps as ``toDateTime('...', 'UTC')`` literals. Counts are exact after duplicate
delivery: the aggregates hold ``uniqExact`` states of review_id, merged here, and the
``reviews`` and ``alerts`` tables are read with ``FINAL``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from stream.reputation.alerts import ALERT_COLUMNS, PENDING, Window
from stream.reputation.rules import (
    AlertKind,
    CategoryActivity,
    Finding,
    OpenAlert,
    ProductActivity,
    SentimentCounts,
    SubjectType,
)

if TYPE_CHECKING:
    from stream.sink.backend import ClickHouse

SENTIMENT_TABLE = "sentiment_minute"
COMPLAINT_TABLE = "complaint_minute"
REVIEWS_TABLE = "reviews"
ALERTS_TABLE = "alerts"
TOP_COMPLAINTS = 5


def quote(value: str) -> str:
    """A ClickHouse string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def ts(moment: datetime) -> str:
    """A ClickHouse ``DateTime('UTC')`` literal (whole seconds)."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"toDateTime('{text}', 'UTC')"


def in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(quote(v) for v in values) + ")"


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _split_counts(w: str, b: str) -> str:
    """Select list: window and baseline counts per sentiment from ``n`` by ``minute``."""
    parts = []
    for label, when in (("w", w), ("b", b)):
        for sentiment in ("negative", "neutral", "positive"):
            parts.append(f"sumIf(n, sentiment = '{sentiment}' AND {when}) AS {label}_{sentiment}")
    return ",\n  ".join(parts)


def sentiment_sql(window: Window, group: str, having: str = "") -> str:
    """Window and baseline sentiment counts per ``group`` column (product_id or category)."""
    w = f"minute >= {ts(window.start)}"
    b = f"minute < {ts(window.start)}"
    extra = ", any(category) AS cat" if group == "product_id" else ""
    return f"""
SELECT {group}{extra},
  {_split_counts(w, b)}
FROM (
  SELECT product_id, category, minute, sentiment, uniqExactMerge(reviews) AS n
  FROM {SENTIMENT_TABLE}
  WHERE minute >= {ts(window.baseline_start)} AND minute < {ts(window.end)}
  GROUP BY product_id, category, minute, sentiment
)
GROUP BY {group}
{having}
"""


def complaint_count_sql(window: Window, products: Sequence[str] | None) -> str:
    """Distinct negative reviews with complaint keywords, window and baseline, per product.

    Merging the per-keyword states of one minute counts each review once however many
    complaint keywords it has (a review lives in exactly one minute)."""
    where = f"AND product_id IN {in_list(products)}" if products is not None else ""
    return f"""
SELECT product_id,
  sumIf(n, minute >= {ts(window.start)}) AS w_reviews,
  sumIf(n, minute < {ts(window.start)}) AS b_reviews
FROM (
  SELECT product_id, minute, uniqExactMerge(reviews) AS n
  FROM {COMPLAINT_TABLE}
  WHERE minute >= {ts(window.baseline_start)} AND minute < {ts(window.end)} {where}
  GROUP BY product_id, minute
)
GROUP BY product_id
"""


def top_complaints_sql(start: datetime, end: datetime, products: Sequence[str]) -> str:
    return f"""
SELECT product_id, keyword, uniqExactMerge(reviews) AS n
FROM {COMPLAINT_TABLE}
WHERE minute >= {ts(start)} AND minute < {ts(end)} AND product_id IN {in_list(products)}
GROUP BY product_id, keyword
ORDER BY product_id, n DESC, keyword
LIMIT {TOP_COMPLAINTS} BY product_id
"""


def _counts(row: Sequence, offset: int) -> SentimentCounts:
    return SentimentCounts(
        negative=int(row[offset]), neutral=int(row[offset + 1]), positive=int(row[offset + 2])
    )


@dataclass(frozen=True)
class Activity:
    """Everything the rules need for one evaluation."""

    products: list[ProductActivity]
    categories: list[CategoryActivity]
    prior_negative_ratio: float
    prior_complaint_share: float


def fetch_activity(ch: ClickHouse, window: Window, min_volume: int) -> Activity:
    """Figures for products with at least ``min_volume`` reviews in the window (the only
    ones that can alert), every category, and shop-wide baseline priors."""
    product_rows = ch.query(
        sentiment_sql(
            window,
            "product_id",
            f"HAVING w_negative + w_neutral + w_positive >= {int(min_volume)}",
        )
    )
    category_rows = ch.query(sentiment_sql(window, "category"))
    categories = [
        CategoryActivity(category=row[0], window=_counts(row, 1), baseline=_counts(row, 4))
        for row in category_rows
    ]
    baseline_total = sum(c.baseline.total for c in categories)
    baseline_negative = sum(c.baseline.negative for c in categories)
    all_complaints = ch.query(
        f"""
SELECT uniqExactMerge(reviews) FROM {COMPLAINT_TABLE}
WHERE minute >= {ts(window.baseline_start)} AND minute < {ts(window.start)}
"""
    )
    baseline_complaints = int(all_complaints[0][0]) if all_complaints else 0
    ids = [row[0] for row in product_rows]
    complaints: dict[str, tuple[int, int]] = {}
    tops: dict[str, list[tuple[str, int]]] = {}
    if ids:
        for product_id, w_reviews, b_reviews in ch.query(complaint_count_sql(window, ids)):
            complaints[product_id] = (int(w_reviews), int(b_reviews))
        for product_id, keyword, n in ch.query(top_complaints_sql(window.start, window.end, ids)):
            tops.setdefault(product_id, []).append((keyword, int(n)))
    products = [
        ProductActivity(
            product_id=row[0],
            category=row[1],
            window=_counts(row, 2),
            baseline=_counts(row, 5),
            window_complaint_reviews=complaints.get(row[0], (0, 0))[0],
            baseline_complaint_reviews=complaints.get(row[0], (0, 0))[1],
            top_complaints=tuple(tops.get(row[0], ())),
        )
        for row in product_rows
    ]
    return Activity(
        products=products,
        categories=categories,
        prior_negative_ratio=baseline_negative / baseline_total if baseline_total else 0.0,
        prior_complaint_share=baseline_complaints / baseline_total if baseline_total else 0.0,
    )


def fetch_samples(ch: ClickHouse, finding: Finding, window: Window, limit: int) -> list[str]:
    """Newest review ids behind a finding: negative ones (with complaint keywords for a
    complaint surge) of the product or category in the window."""
    if limit <= 0:
        return []
    column = "product_id" if finding.subject_type is SubjectType.PRODUCT else "category"
    complaint = (
        "AND notEmpty(complaint_keywords)" if finding.kind is AlertKind.COMPLAINT_SURGE else ""
    )
    rows = ch.query(
        f"""
SELECT review_id FROM {REVIEWS_TABLE} FINAL
WHERE {column} = {quote(finding.subject)} AND sentiment = 'negative' {complaint}
  AND created_at >= {ts(window.start)} AND created_at < {ts(window.end)}
ORDER BY created_at DESC, review_id
LIMIT {int(limit)}
"""
    )
    return [row[0] for row in rows]


@dataclass(frozen=True)
class StoredAlert:
    """An alerts-table row as the engine needs it back."""

    alert: OpenAlert
    status: str
    payload: str


def fetch_open_alerts(ch: ClickHouse, seen_since: datetime) -> list[StoredAlert]:
    """Alerts seen since ``seen_since`` (the cooldown horizon) and any still pending.

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
            alert=OpenAlert(
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


def write_alert_rows(ch: ClickHouse, rows: Sequence[dict]) -> None:
    if rows:
        ch.insert(ALERTS_TABLE, ALERT_COLUMNS, [[row[c] for c in ALERT_COLUMNS] for row in rows])
