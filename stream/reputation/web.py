"""The worker's JSON report endpoints (same data as ``reviewpulse report``).

``GET /reports/products?period=24h&limit=10&min_reviews=20``
``GET /reports/complaints?hours=24&limit=10``
``GET /reports/alerts?limit=20``

Queries run on the alert engine's ClickHouse thread, off the event loop, each with ClickHouse's
``max_execution_time`` of ``report-timeout-s`` (504 past it); windows are bounded by
``report-max-hours``. Access (the web token) is checked for every page by ``stream.access``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from stream.reputation import reports

if TYPE_CHECKING:
    import faust

    from stream.reputation.engine import AlertEngine
    from stream.sink.backend import ClickHouse

# ClickHouse's error for a query past max_execution_time (TIMEOUT_EXCEEDED), on both backends.
TIMEOUT_EXCEEDED = re.compile(r"Code: 159\b|TIMEOUT_EXCEEDED|Timeout exceeded")


class TimeLimited:
    """Read-only view of a ClickHouse connection whose every query carries
    ``SETTINGS max_execution_time``, so ClickHouse itself stops a report that runs too long
    (the SETTINGS clause works on 18.16 and on chdb)."""

    def __init__(self, clickhouse: ClickHouse, seconds: float) -> None:
        self.clickhouse = clickhouse
        self.database = clickhouse.database
        self.seconds = max(1, round(seconds))

    def query(self, sql: str) -> list[tuple]:
        statement = sql.strip().rstrip(";")
        return self.clickhouse.query(f"{statement}\nSETTINGS max_execution_time = {self.seconds}")

    def execute(self, sql: str) -> None:
        raise PermissionError("reports only read")

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
        raise PermissionError("reports only read")

    def close(self) -> None:
        """The connection belongs to the alert engine."""


class BadParameter(ValueError):
    pass


def int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadParameter(f"{name} must be between {low} and {high}, got {value}")
    return value


def products_args(query: Mapping[str, str], max_hours: int = 24 * 7) -> dict[str, Any]:
    period = query.get("period", "24h")
    periods = sorted(p for p, hours in reports.PERIOD_HOURS.items() if hours <= max_hours)
    if period not in periods:
        raise BadParameter(f"period must be one of {periods}")
    return {
        "period": period,
        "limit": int_param(query, "limit", 10, 1, 1000),
        "min_reviews": int_param(query, "min_reviews", 20, 0, 1_000_000),
    }


def complaints_args(query: Mapping[str, str], max_hours: int = 24 * 7) -> dict[str, Any]:
    return {
        "hours": int_param(query, "hours", min(24, max_hours), 1, max_hours),
        "limit": int_param(query, "limit", 10, 1, 1000),
    }


def alerts_args(query: Mapping[str, str], max_hours: int = 24 * 7) -> dict[str, Any]:
    return {"limit": int_param(query, "limit", 20, 1, 1000)}


ENDPOINTS: dict[str, tuple[Callable[..., list[dict[str, Any]]], Callable[..., dict]]] = {
    "/reports/products": (reports.top_products, products_args),
    "/reports/complaints": (reports.rising_complaints, complaints_args),
    "/reports/alerts": (reports.recent_alerts, alerts_args),
}


def register_pages(app: faust.App, engine: AlertEngine) -> None:
    """Add the ``/reports/*`` pages to the app's web server."""
    for path, (report, parse) in ENDPOINTS.items():
        app.page(path, name=path.strip("/").replace("/", "-"))(_page(engine, report, parse))


def _page(
    engine: AlertEngine,
    report: Callable[..., list[dict[str, Any]]],
    parse: Callable[..., dict],
) -> Callable[..., Any]:
    limits = engine.alerts

    async def view(self: Any, request: Any) -> Any:
        try:
            kwargs = parse(request.query, limits.report_max_hours)
        except BadParameter as error:
            return self.json({"error": str(error)}, status=400)
        reads = TimeLimited(engine.clickhouse, limits.report_timeout_s)
        try:
            rows = await engine.run_blocking(lambda: report(reads, **kwargs))
        except Exception as exc:
            if not TIMEOUT_EXCEEDED.search(str(exc)):
                raise
            return self.json(
                {"error": f"the report took longer than {reads.seconds}s; ask for less"},
                status=504,
            )
        return self.json({"rows": reports.jsonable(rows)})

    return view
