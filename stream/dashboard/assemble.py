"""The live page's data, assembled on the server from the bounded reads in ``queries``.

Each function is blocking (run it on the dashboard's thread) and returns a JSON-ready dict:
datetimes as RFC 3339 strings, floats rounded. The browser only lays the figures out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from stream.dashboard import queries
from stream.dashboard.queries import Span
from stream.monitoring.report import model_health_sections
from stream.sink.values import as_utc

if TYPE_CHECKING:
    from model.card import ModelCard
    from stream.config import MonitorConfig
    from stream.sink.backend import ClickHouse


@dataclass(frozen=True)
class Period:
    """A ranking window and the sparkline that goes with it."""

    name: str
    length: timedelta
    sparkline: timedelta
    bucket_s: int


PERIODS = (
    Period("1h", timedelta(hours=1), timedelta(hours=3), 300),
    Period("24h", timedelta(hours=24), timedelta(hours=24), 3600),
)


def to_json(value: Any) -> Any:
    """``value`` with datetimes as ``...Z`` strings and floats rounded to 4 places."""
    if isinstance(value, datetime):
        return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def reputation(
    ch: ClickHouse, now: datetime, *, limit: int, min_reviews: int, categories: int
) -> dict[str, Any]:
    """Worst products and categories for each period, each with its negative ratio, trend,
    sparkline of the negative ratio (last hours) and top complaint keywords."""
    out: dict[str, Any] = {"generated_at": now, "periods": {}}
    for period in PERIODS:
        span = Span.ending_at(now, period.length)
        spark = Span.ending_at(now, period.sparkline)
        section = {}
        for key, count in (("product_id", limit), ("category", categories)):
            rows = queries.ranking(ch, key, span, min_reviews=min_reviews, limit=count)
            names = [row[key] for row in rows]
            lines = queries.sparklines(ch, key, names, spark, period.bucket_s)
            words = queries.top_complaints(ch, key, names, span, per_key=3)
            for row in rows:
                row["sparkline"] = lines.get(row[key], [])
                row["complaints"] = words.get(row[key], [])
            section["products" if key == "product_id" else "categories"] = rows
        section["sparkline_hours"] = period.sparkline.total_seconds() / 3600
        section["sparkline_bucket_s"] = period.bucket_s
        out["periods"][period.name] = section
    return to_json(out)


def alerts(ch: ClickHouse, now: datetime, *, limit: int, samples: int) -> dict[str, Any]:
    return to_json(
        {
            "generated_at": now,
            "alerts": queries.recent_alerts(ch, now, limit=limit, samples=samples),
        }
    )


def product(
    ch: ClickHouse, product_id: str, now: datetime, *, hours: int, reviews: int
) -> dict[str, Any] | None:
    """One product: summary (None if it had no review in 48 h and none stored), its
    per-minute sentiment over the last ``hours``, complaint keywords and latest reviews."""
    summary = queries.product_summary(ch, product_id, now)
    latest = queries.latest_reviews(ch, product_id, now, limit=reviews)
    if summary is None and not latest:
        return None
    day = Span.ending_at(now, timedelta(hours=24))
    words = queries.top_complaints(
        ch, "product_id", [product_id], day, per_key=10, recent=now - timedelta(hours=1)
    )
    return to_json(
        {
            "generated_at": now,
            "product_id": product_id,
            "summary": summary,
            "hours": hours,
            "minutes": queries.product_minutes(
                ch, product_id, Span.ending_at(now, timedelta(hours=hours))
            ),
            "complaints": words.get(product_id, []),
            "reviews": latest,
        }
    )


def model_health(
    ch: ClickHouse, card: ModelCard | str, config: MonitorConfig, now: datetime
) -> dict[str, Any]:
    """Rating feedback and drift of the last 24 h (``stream.monitoring.report``'s sections:
    title, columns, rows)."""
    sections = model_health_sections(ch, card, config, hours=24, limit=20, now=now)
    return to_json(
        {
            "generated_at": now,
            "model_version": card if isinstance(card, str) else card.version,
            "sections": [
                {"title": title, "columns": list(columns), "rows": rows}
                for title, (rows, columns) in sections.items()
            ],
        }
    )
