"""The live page's ClickHouse reads. Blocking: call from the dashboard's thread.

Every query is bounded three ways: a time range on the table's first key column (``minute``)
or on ``created_at``, a ``LIMIT``, and ``SETTINGS max_execution_time`` so the server gives up
rather than keep a page (and, on chdb, the worker's ClickHouse thread) waiting. Times come
in as ``now`` so the same window reads the same rows on both backends. The SQL runs unchanged
on ClickHouse 18.16 and 26.x (no CTEs, no window functions). Counts merge ``uniqExact`` states
of review_id, so they stay exact after duplicate delivery, and count a review once even when
its copies disagree on sentiment: merged over sentiments, each under the most negative one
any copy has (``stream.sink.store.RESOLVED_SENTIMENT_COUNTS``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from stream.reputation.queries import ALERTS_TABLE, COMPLAINT_TABLE, REVIEWS_TABLE, SENTIMENT_TABLE
from stream.sink.sql import datetime_literal as ts
from stream.sink.sql import in_list, quote
from stream.sink.store import RESOLVED_SENTIMENT_COUNTS
from stream.sink.values import as_utc

if TYPE_CHECKING:
    from stream.sink.backend import ClickHouse

MINUTE = timedelta(minutes=1)
# The server stops a dashboard query after this long (the page shows the error instead).
QUERY_SECONDS = 2
# How far back the page reads reviews and alerts at most.
REVIEWS_LOOKBACK = timedelta(days=30)
ALERTS_LOOKBACK = timedelta(days=7)


def bounded(sql: str, seconds: int = QUERY_SECONDS) -> str:
    """``sql`` with a server-side time limit."""
    return f"{sql.rstrip()}\nSETTINGS max_execution_time = {int(seconds)}"


@dataclass(frozen=True)
class Span:
    """A window of whole minutes ending with the minute of ``now`` (included)."""

    start: datetime
    end: datetime

    @classmethod
    def ending_at(cls, now: datetime, length: timedelta) -> Span:
        end = as_utc(now).replace(second=0, microsecond=0) + MINUTE
        return cls(end - length, end)

    def before(self) -> Span:
        """The window of the same length just before this one."""
        return Span(self.start - (self.end - self.start), self.start)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def window_counts_sql(
    key: str, span: Span, *, keys: Sequence[str] | None, min_reviews: int, limit: int
) -> str:
    """Per ``key`` (product_id or category): distinct reviews and negative reviews in
    ``span``, worst negative ratio first. The states are merged straight per key (a union
    of review ids, exact), not per minute first: far fewer groups to hold."""
    filter_ = "" if keys is None else f" AND {key} IN {in_list(keys)}"
    return bounded(
        f"""
SELECT {key}, any(category), uniqExactMerge(reviews) AS n,
       uniqExactMergeIf(reviews, sentiment = 'negative') AS neg
FROM {SENTIMENT_TABLE}
WHERE minute >= {ts(span.start)} AND minute < {ts(span.end)}{filter_}
GROUP BY {key}
HAVING n >= {int(min_reviews)} AND n > 0
ORDER BY neg / n DESC, n DESC, {key}
LIMIT {int(limit)}
"""
    )


def ranking(
    ch: ClickHouse, key: str, span: Span, *, min_reviews: int, limit: int
) -> list[dict[str, Any]]:
    """Worst first: negative ratio in ``span`` and its change against the window before
    (``trend``, None when that window had no reviews). Two reads: the ranking over
    ``span``, then the window before for the ranked keys only."""
    ranked = ch.query(window_counts_sql(key, span, keys=None, min_reviews=min_reviews, limit=limit))
    names = [row[0] for row in ranked]
    before = {
        row[0]: (int(row[2]), int(row[3]))
        for row in (
            ch.query(
                window_counts_sql(key, span.before(), keys=names, min_reviews=0, limit=len(names))
            )
            if names
            else []
        )
    }
    rows = []
    for name, category, reviews, negative in ranked:
        ratio = int(negative) / int(reviews)
        prev_reviews, prev_negative = before.get(name, (0, 0))
        previous = _ratio(prev_negative, prev_reviews)
        rows.append(
            {
                key: name,
                **({"category": category} if key != "category" else {}),
                "reviews": int(reviews),
                "negative": int(negative),
                "negative_ratio": ratio,
                "previous_reviews": prev_reviews,
                "trend": None if previous is None else ratio - previous,
            }
        )
    return rows


def series_sql(key: str, keys: Sequence[str] | None, span: Span, bucket_s: int) -> str:
    filter_ = "" if keys is None else f" AND {key} IN {in_list(keys)}"
    return bounded(
        f"""
SELECT {key}, intDiv(toUInt32(minute), {int(bucket_s)}) * {int(bucket_s)} AS bucket,
       sum(n), sum(neg)
FROM (
    SELECT {key}, minute, uniqExactMerge(reviews) AS n,
           uniqExactMergeIf(reviews, sentiment = 'negative') AS neg
    FROM {SENTIMENT_TABLE}
    WHERE minute >= {ts(span.start)} AND minute < {ts(span.end)}{filter_}
    GROUP BY {key}, minute
)
GROUP BY {key}, bucket
ORDER BY {key}, bucket
LIMIT 20000
"""
    )


def sparklines(
    ch: ClickHouse, key: str, keys: Sequence[str] | None, span: Span, bucket_s: int
) -> dict[str, list[float | None]]:
    """Per key, the negative ratio in each of the ``len(span) / bucket_s`` buckets up to
    the one holding ``span``'s last minute (None: no reviews then). ``keys``: the ones to
    read (None: all)."""
    if keys is not None and not keys:
        return {}
    end = int(span.end.timestamp())
    count = max(1, round((span.end - span.start).total_seconds() / bucket_s))
    first = (end - 1) // bucket_s * bucket_s - (count - 1) * bucket_s
    buckets = range(first, end, bucket_s)
    aligned = Span(datetime.fromtimestamp(first, UTC), span.end)
    found: dict[str, dict[int, float]] = defaultdict(dict)
    for name, bucket, n, neg in ch.query(series_sql(key, keys, aligned, bucket_s)):
        if int(n):
            found[name][int(bucket)] = int(neg) / int(n)
    return {name: [values.get(b) for b in buckets] for name, values in found.items()}


def complaints_sql(
    key: str, keys: Sequence[str] | None, span: Span, per_key: int, recent: datetime
) -> str:
    filter_ = "" if keys is None else f" AND {key} IN {in_list(keys)}"
    return bounded(
        f"""
SELECT {key}, keyword, sum(n) AS reviews, sumIf(n, minute >= {ts(recent)}) AS recent
FROM (
    SELECT {key}, keyword, minute, uniqExactMerge(reviews) AS n
    FROM {COMPLAINT_TABLE}
    WHERE minute >= {ts(span.start)} AND minute < {ts(span.end)}{filter_}
    GROUP BY {key}, keyword, minute
)
GROUP BY {key}, keyword
ORDER BY {key}, reviews DESC, keyword
LIMIT {int(per_key)} BY {key}
LIMIT 20000
"""
    )


def top_complaints(
    ch: ClickHouse,
    key: str,
    keys: Sequence[str] | None,
    span: Span,
    *,
    per_key: int = 3,
    recent: datetime | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Per key, its most frequent complaint keywords in ``span`` (distinct negative
    reviews mentioning each; ``recent``: also counted since then)."""
    if keys is not None and not keys:
        return {}
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for name, keyword, reviews, recent_reviews in ch.query(
        complaints_sql(key, keys, span, per_key, recent or span.start)
    ):
        found[name].append(
            {"keyword": keyword, "reviews": int(reviews), "recent": int(recent_reviews)}
        )
    return dict(found)


ALERT_COLUMNS = (
    "alert_id",
    "raised_at",
    "last_seen_at",
    "kind",
    "severity",
    "subject_type",
    "subject",
    "category",
    "status",
    "message",
    "sample_review_ids",
    "payload",
)


def alerts_sql(now: datetime, limit: int) -> str:
    return bounded(
        f"""
SELECT {", ".join(ALERT_COLUMNS)}
FROM {ALERTS_TABLE} FINAL
WHERE raised_at >= {ts(as_utc(now) - ALERTS_LOOKBACK)}
ORDER BY raised_at DESC, alert_id
LIMIT {int(limit)}
"""
    )


def recent_alerts(
    ch: ClickHouse, now: datetime, *, limit: int, samples: int
) -> list[dict[str, Any]]:
    """Newest incidents first (last ``ALERTS_LOOKBACK``), each with its figures, top
    complaints and up to ``samples`` sample reviews (text, sentiment, confidence)."""
    alerts = []
    for row in ch.query(alerts_sql(now, limit)):
        alert = dict(zip(ALERT_COLUMNS, row, strict=True))
        payload = _payload(alert.pop("payload"))
        alert["raised_at"] = as_utc(alert["raised_at"])
        alert["last_seen_at"] = as_utc(alert["last_seen_at"])
        alert["figures"] = payload.get("figures") or {}
        alert["top_complaints"] = payload.get("top_complaints") or []
        alert["window_start"] = payload.get("window_start")
        alert["window_end"] = payload.get("window_end")
        alert["sample_review_ids"] = list(alert["sample_review_ids"])[:samples]
        alerts.append(alert)
    wanted = [rid for alert in alerts for rid in alert["sample_review_ids"]]
    found = reviews_by_id(ch, wanted)
    for alert in alerts:
        alert["samples"] = [found[rid] for rid in alert.pop("sample_review_ids") if rid in found]
    return alerts


def _payload(text: str) -> dict[str, Any]:
    try:
        payload = json.loads(text)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


REVIEW_COLUMNS = (
    "review_id",
    "product_id",
    "created_at",
    "rating",
    "sentiment",
    "confidence",
    "text",
    "complaint_keywords",
    "model_version",
)


def _review(row: Sequence[Any]) -> dict[str, Any]:
    review = dict(zip(REVIEW_COLUMNS, row, strict=True))
    review["created_at"] = as_utc(review["created_at"])
    review["confidence"] = float(review["confidence"])
    review["complaint_keywords"] = list(review["complaint_keywords"])
    return review


def reviews_by_id(ch: ClickHouse, review_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored reviews of ``review_ids`` (at most a few hundred: the primary key finds
    them), by id."""
    if not review_ids:
        return {}
    ids = list(dict.fromkeys(review_ids))[:500]
    sql = bounded(
        f"""
SELECT {", ".join(REVIEW_COLUMNS)}
FROM {REVIEWS_TABLE}
WHERE review_id IN {in_list(ids)}
ORDER BY review_id
LIMIT 1 BY review_id
LIMIT {len(ids)}
"""
    )
    return {row[0]: _review(row) for row in ch.query(sql)}


def latest_reviews(
    ch: ClickHouse, product_id: str, now: datetime, *, limit: int
) -> list[dict[str, Any]]:
    """The product's newest reviews (last ``REVIEWS_LOOKBACK``), newest first."""
    sql = bounded(
        f"""
SELECT {", ".join(REVIEW_COLUMNS)}
FROM {REVIEWS_TABLE}
WHERE product_id = {quote(product_id)}
  AND created_at >= {ts(as_utc(now) - REVIEWS_LOOKBACK)}
ORDER BY created_at DESC, review_id
LIMIT 1 BY review_id
LIMIT {int(limit)}
"""
    )
    return [_review(row) for row in ch.query(sql)]


def product_minutes(ch: ClickHouse, product_id: str, span: Span) -> dict[str, Any]:
    """Per minute of ``span``: the product's reviews by sentiment (every minute, 0 when
    quiet, so a chart shows the gaps; ``minutes`` as Unix seconds)."""
    sql = bounded(
        f"""
SELECT toUInt32(minute) AS m, {RESOLVED_SENTIMENT_COUNTS}
FROM {SENTIMENT_TABLE}
WHERE minute >= {ts(span.start)} AND minute < {ts(span.end)}
  AND product_id = {quote(product_id)}
GROUP BY m
ORDER BY m
LIMIT 10000
"""
    )
    counts: dict[int, dict[str, int]] = {}
    for minute, _, negative, neutral, positive in ch.query(sql):
        counts[int(minute)] = {
            "negative": int(negative),
            "neutral": int(neutral),
            "positive": int(positive),
        }
    minutes = list(range(int(span.start.timestamp()), int(span.end.timestamp()), 60))
    return {
        "minutes": minutes,
        **{
            label: [counts.get(m, {}).get(label, 0) for m in minutes]
            for label in ("negative", "neutral", "positive")
        },
    }


def product_summary(ch: ClickHouse, product_id: str, now: datetime) -> dict[str, Any] | None:
    """The product's last hour and 24 h: reviews, negative ratio and its trend, and how
    often the model agreed with the star rating (4-5 positive, 3 neutral, 1-2 negative).
    None when it had no review in the last 48 h."""
    day = Span.ending_at(now, timedelta(hours=24))
    hour = Span.ending_at(now, timedelta(hours=1))
    before = day.before()
    sql = bounded(
        f"""
SELECT any(category),
       sumIf(total, minute >= {ts(hour.start)}), sumIf(negative, minute >= {ts(hour.start)}),
       sumIf(total, minute >= {ts(day.start)}), sumIf(negative, minute >= {ts(day.start)}),
       sumIf(total, minute < {ts(day.start)}), sumIf(negative, minute < {ts(day.start)}),
       sumIf(total, minute >= {ts(day.start)} AND rating > 0),
       sumIf(multiIf(rating >= 4, positive, rating = 3, neutral, toInt64(negative)),
             minute >= {ts(day.start)} AND rating > 0),
       count()
FROM (
    SELECT category, minute, rating, {RESOLVED_SENTIMENT_COUNTS}
    FROM {SENTIMENT_TABLE}
    WHERE minute >= {ts(before.start)} AND minute < {ts(day.end)}
      AND product_id = {quote(product_id)}
    GROUP BY category, minute, rating
)
"""
    )
    [row] = ch.query(sql)
    category, r1, n1, r24, n24, rp, np_, rated, agreeing, cells = row
    if not int(cells):
        return None
    ratio_24h = _ratio(int(n24), int(r24))
    previous = _ratio(int(np_), int(rp))
    return {
        "product_id": product_id,
        "category": category,
        "reviews_1h": int(r1),
        "negative_ratio_1h": _ratio(int(n1), int(r1)),
        "reviews_24h": int(r24),
        "negative_ratio_24h": ratio_24h,
        "trend_24h": None if ratio_24h is None or previous is None else ratio_24h - previous,
        "rated_24h": int(rated),
        "agreement_24h": _ratio(int(agreeing), int(rated)),
    }
