"""Analyst reports over the reputation views: the data behind ``reviewpulse report`` and
the worker's ``/reports/*`` endpoints. Blocking ClickHouse reads; rows come back as dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from stream.reputation.queries import ALERTS_TABLE, COMPLAINT_TABLE
from stream.sink.values import as_utc

if TYPE_CHECKING:
    from stream.sink.backend import ClickHouse

Period = Literal["1h", "24h"]
PERIOD_HOURS: dict[str, int] = {"1h": 1, "24h": 24}

PRODUCT_COLUMNS = (
    "product_id",
    "category",
    "reviews",
    "negative",
    "negative_ratio",
    "net_score",
    "negative_ratio_trend",
    "net_score_trend",
)


def _rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def top_products(
    ch: ClickHouse, *, period: Period = "24h", limit: int = 10, min_reviews: int = 20
) -> list[dict[str, Any]]:
    """Products with the highest negative ratio over the last ``period`` (view
    ``product_reputation``), with the change against the period before."""
    p = "1h" if period == "1h" else "24h"
    sql = f"""
SELECT product_id, category, reviews_{p}, negative_{p}, negative_ratio_{p}, net_score_{p},
       negative_ratio_trend_{p}, net_score_trend_{p}
FROM product_reputation
WHERE reviews_{p} >= {int(min_reviews)}
ORDER BY negative_ratio_{p} DESC, reviews_{p} DESC, product_id
LIMIT {int(limit)}
"""
    return _rows(PRODUCT_COLUMNS, ch.query(sql))


def rising_complaints(ch: ClickHouse, *, hours: int = 24, limit: int = 10) -> list[dict[str, Any]]:
    """Complaint keywords per product that rose most over the last ``hours`` against the
    ``hours`` before (distinct negative reviews mentioning them)."""
    span = int(hours) * 3600
    sql = f"""
SELECT product_id, any(category), keyword,
       sumIf(n, minute > now_minute - {span}) AS current,
       sumIf(n, minute <= now_minute - {span}) AS previous
FROM (
  SELECT product_id, category, keyword, minute, toStartOfMinute(now()) AS now_minute,
         uniqExactMerge(reviews) AS n
  FROM {COMPLAINT_TABLE}
  WHERE minute > toStartOfMinute(now()) - {2 * span}
  GROUP BY product_id, category, keyword, minute
)
GROUP BY product_id, keyword
HAVING current > previous
ORDER BY current - previous DESC, current DESC, product_id, keyword
LIMIT {int(limit)}
"""
    rows = _rows(("product_id", "category", "keyword", "current", "previous"), ch.query(sql))
    for row in rows:
        row["change"] = row["current"] - row["previous"]
    return rows


ALERT_REPORT_COLUMNS = (
    "raised_at",
    "last_seen_at",
    "kind",
    "severity",
    "subject_type",
    "subject",
    "category",
    "message",
    "alert_id",
    "status",
)


def recent_alerts(ch: ClickHouse, *, limit: int = 20) -> list[dict[str, Any]]:
    """Newest alerts first, one row per incident."""
    sql = f"""
SELECT {", ".join(ALERT_REPORT_COLUMNS)}
FROM {ALERTS_TABLE} FINAL
ORDER BY raised_at DESC, alert_id
LIMIT {int(limit)}
"""
    rows = _rows(ALERT_REPORT_COLUMNS, ch.query(sql))
    for row in rows:
        row["raised_at"] = as_utc(row["raised_at"])
        row["last_seen_at"] = as_utc(row["last_seen_at"])
    return rows


def jsonable(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows with datetimes as RFC 3339 strings and floats rounded, for JSON output."""
    out = []
    for row in rows:
        item: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, datetime):
                item[key] = as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
            elif isinstance(value, float):
                item[key] = round(value, 4)
            else:
                item[key] = value
        out.append(item)
    return out


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table; ratios shown as percentages, trends signed, n/a for none."""

    def cell(key: str, value: Any) -> str:
        if value is None:
            return "n/a"
        if isinstance(value, datetime):
            return as_utc(value).strftime("%Y-%m-%d %H:%M")
        if isinstance(value, float):
            if key.endswith("_trend"):
                return f"{value:+.2f}" if "score" in key else f"{100 * value:+.0f}pp"
            if key.endswith("ratio"):
                return f"{100 * value:.0f}%"
            return f"{value:.2f}"
        if isinstance(value, int) and key == "change":
            return f"{value:+d}"
        return str(value)

    if not rows:
        return "(none)"
    table = [[cell(c, row[c]) for c in columns] for row in rows]
    widths = [max(_width(c), *(_width(r[i]) for r in table)) for i, c in enumerate(columns)]
    lines = [
        "  ".join(_pad(c, w) for c, w in zip(columns, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(_pad(v, w) for v, w in zip(r, widths, strict=True)) for r in table]
    return "\n".join(lines)


def _width(text: str) -> int:
    """Display width: CJK characters take two columns in a terminal."""
    return sum(2 if "\u2e80" <= ch <= "\ufaff" or "\uff00" <= ch <= "\uffef" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
