"""The worker's JSON report endpoints (same data as ``reviewpulse report``).

``GET /reports/products?period=24h&limit=10&min_reviews=20``
``GET /reports/complaints?hours=24&limit=10``
``GET /reports/alerts?limit=20``

Queries run on the alert engine's ClickHouse thread, off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from stream.reputation import reports

if TYPE_CHECKING:
    import faust

    from stream.reputation.engine import AlertEngine


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


def products_args(query: Mapping[str, str]) -> dict[str, Any]:
    period = query.get("period", "24h")
    if period not in reports.PERIOD_HOURS:
        raise BadParameter(f"period must be one of {sorted(reports.PERIOD_HOURS)}")
    return {
        "period": period,
        "limit": int_param(query, "limit", 10, 1, 1000),
        "min_reviews": int_param(query, "min_reviews", 20, 0, 1_000_000),
    }


def complaints_args(query: Mapping[str, str]) -> dict[str, Any]:
    return {
        "hours": int_param(query, "hours", 24, 1, 24 * 30),
        "limit": int_param(query, "limit", 10, 1, 1000),
    }


def alerts_args(query: Mapping[str, str]) -> dict[str, Any]:
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
    async def view(self: Any, request: Any) -> Any:
        try:
            kwargs = parse(request.query)
        except BadParameter as error:
            return self.json({"error": str(error)}, status=400)
        rows = await engine.run_blocking(lambda: report(engine.clickhouse, **kwargs))
        return self.json({"rows": reports.jsonable(rows)})

    return view
