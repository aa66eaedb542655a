"""ClickHouse reads and writes of the alert engine. Blocking: call from an executor.

The SQL runs unchanged on ClickHouse 18.16 and 26.x: no CTEs, no window functions,
timestamps as ``toDateTime('...', 'UTC')`` literals. Counts are exact after duplicate
delivery: the aggregates hold ``uniqExact`` states of review_id, merged here; ``reviews``
is read with ``FINAL`` and ``alerts`` by ``argMax(..., version)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
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
from stream.sink.sql import chunks, in_list, quote
from stream.sink.sql import datetime_literal as ts
from stream.sink.values import as_utc

if TYPE_CHECKING:
    from stream.sink.backend import ClickHouse

SENTIMENT_TABLE = "sentiment_minute"
COMPLAINT_TABLE = "complaint_minute"
REVIEWS_TABLE = "reviews"
ALERTS_TABLE = "alerts"
TOP_COMPLAINTS = 5


def sentiment_sql(window: Window) -> str:
    """Distinct reviews per product and sentiment, in the window and in the baseline.

    The states of all minutes on each side are merged into one set per side, so a review
    is counted once however often it was delivered (it lives in exactly one minute)."""
    return f"""
SELECT product_id, any(category), sentiment,
       uniqExactMergeIf(reviews, minute >= {ts(window.start)}) AS in_window,
       uniqExactMergeIf(reviews, minute < {ts(window.start)}) AS in_baseline
FROM {SENTIMENT_TABLE}
WHERE minute >= {ts(window.baseline_start)} AND minute < {ts(window.end)}
GROUP BY product_id, sentiment
"""


def complaint_count_sql(window: Window) -> str:
    """Distinct negative reviews with complaint keywords per product, window and baseline.

    Merging the per-keyword states counts a review once however many complaint keywords
    it has."""
    return f"""
SELECT product_id,
       uniqExactMergeIf(reviews, minute >= {ts(window.start)}) AS in_window,
       uniqExactMergeIf(reviews, minute < {ts(window.start)}) AS in_baseline
FROM {COMPLAINT_TABLE}
WHERE minute >= {ts(window.baseline_start)} AND minute < {ts(window.end)}
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


@dataclass(frozen=True)
class Activity:
    """Everything the rules need for one evaluation."""

    products: list[ProductActivity]
    categories: list[CategoryActivity]
    prior_negative_ratio: float
    prior_complaint_share: float


def _counts(by_sentiment: dict[str, int]) -> SentimentCounts:
    return SentimentCounts(
        negative=by_sentiment.get("negative", 0),
        neutral=by_sentiment.get("neutral", 0),
        positive=by_sentiment.get("positive", 0),
    )


def fetch_activity(ch: ClickHouse, window: Window, min_volume: int) -> Activity:
    """Figures for products with at least ``min_volume`` reviews in the window (the only
    ones that can alert), every category, and shop-wide baseline priors.

    One pass over the sentiment aggregate per evaluation: categories are the sums of their
    products (a product belongs to one category), and the priors the sums of everything."""
    window_counts: dict[str, dict[str, int]] = {}
    baseline_counts: dict[str, dict[str, int]] = {}
    category_of: dict[str, str] = {}
    for product_id, category, sentiment, in_window, in_baseline in ch.query(sentiment_sql(window)):
        category_of[product_id] = category
        window_counts.setdefault(product_id, {})[sentiment] = int(in_window)
        baseline_counts.setdefault(product_id, {})[sentiment] = int(in_baseline)

    cat_window: dict[str, dict[str, int]] = {}
    cat_baseline: dict[str, dict[str, int]] = {}
    for product_id, category in category_of.items():
        for source, target in ((window_counts, cat_window), (baseline_counts, cat_baseline)):
            sums = target.setdefault(category, {})
            for sentiment, n in source[product_id].items():
                sums[sentiment] = sums.get(sentiment, 0) + n
    categories = [
        CategoryActivity(c, _counts(cat_window[c]), _counts(cat_baseline[c]))
        for c in sorted(cat_window)
    ]

    complaints = {
        product_id: (int(w), int(b)) for product_id, w, b in ch.query(complaint_count_sql(window))
    }
    baseline_total = sum(c.baseline.total for c in categories)
    baseline_negative = sum(c.baseline.negative for c in categories)
    baseline_complaints = sum(b for _, b in complaints.values())

    eligible = [
        product_id
        for product_id, counts in window_counts.items()
        if sum(counts.values()) >= min_volume
    ]
    tops: dict[str, list[tuple[str, int]]] = {}
    for chunk in chunks(eligible):
        for product_id, keyword, n in ch.query(top_complaints_sql(window.start, window.end, chunk)):
            tops.setdefault(product_id, []).append((keyword, int(n)))
    products = [
        ProductActivity(
            product_id=product_id,
            category=category_of[product_id],
            window=_counts(window_counts[product_id]),
            baseline=_counts(baseline_counts[product_id]),
            window_complaint_reviews=complaints.get(product_id, (0, 0))[0],
            baseline_complaint_reviews=complaints.get(product_id, (0, 0))[1],
            top_complaints=tuple(tops.get(product_id, ())),
        )
        for product_id in sorted(eligible)
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
