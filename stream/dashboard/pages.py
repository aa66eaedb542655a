"""The live page's routes on the worker's web server. Read-only: every route is a GET.

``GET /``                            the page (pipeline, reputation, alerts, model health)
``GET /products/<id>``               one product
``GET /dashboard/static/<name>``     its CSS, JavaScript and the vendored chart library
``GET /dashboard/api/pipeline``      rates, dead letters, latencies, uptime (this worker)
``GET /dashboard/api/reputation?limit=10&min_reviews=5&categories=10``
``GET /dashboard/api/alerts?limit=20&samples=3``
``GET /dashboard/api/model``         rating feedback and drift (``stream.monitoring``)
``GET /dashboard/api/products/<id>?hours=6&reviews=50``

The page also reads ``/health`` as it is. ClickHouse reads run on the dashboard's one
thread, wait at most ``PAGE_TIMEOUT_S`` (the server stops each query sooner:
``queries.QUERY_SECONDS``), and a result is shared by every request for
``CACHE_S`` seconds, so many open pages cost ClickHouse what one does.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stream.dashboard import assemble
from stream.dashboard.pipeline import PipelineSampler
from stream.reputation.web import BadParameter, int_param

if TYPE_CHECKING:
    import faust

    from model.card import ModelCard
    from stream.config import MonitorConfig
    from stream.sink.backend import ClickHouse

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
PAGE_TIMEOUT_S = 15.0
CACHE_S = 5.0
# The page runs only its own scripts and talks only to this server; data is never markup.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DashboardSources:
    """What the page reads. ``clickhouse`` is used only on ``executor`` (one thread)."""

    clickhouse: ClickHouse
    executor: Executor
    sampler: PipelineSampler
    model_status: Callable[[], dict[str, Any]]
    served_card: Callable[[], ModelCard | str]
    monitor: MonitorConfig
    clock: Callable[[], datetime] = utc_now
    cache: dict[tuple, tuple[float, asyncio.Future]] = field(default_factory=dict)

    async def read(self, key: tuple, work: Callable[[], Any]) -> Any:
        """``work()`` on the dashboard thread, shared by identical reads for ``CACHE_S``."""
        now = time.monotonic()
        for stale in [k for k, (until, _) in self.cache.items() if until < now]:
            del self.cache[stale]
        hit = self.cache.get(key)
        if hit is None:
            loop = asyncio.get_running_loop()
            future = asyncio.ensure_future(loop.run_in_executor(self.executor, work))
            self.cache[key] = hit = (now + CACHE_S, future)
        try:
            return await asyncio.wait_for(asyncio.shield(hit[1]), PAGE_TIMEOUT_S)
        except BaseException:
            self.cache.pop(key, None)  # a failure is not cached
            raise


def static_files(directory: Path = STATIC_DIR) -> dict[str, tuple[bytes, str]]:
    """Every file under ``directory`` by its relative path, with its content type; read
    once, so a request can name only these."""
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind.endswith("javascript"):
                kind += "; charset=utf-8"
            files[path.relative_to(directory).as_posix()] = (path.read_bytes(), kind)
    return files


def register_pages(app: faust.App, sources: DashboardSources) -> None:
    """Add the page, its static files and its JSON routes to the app's web server (the
    worker's access check, ``stream.access``, applies to them as to every page)."""
    from faust.web import View

    files = static_files()

    def file_response(view: Any, name: str) -> Any:
        if name not in files:
            return view.json({"error": f"no file {name!r}"}, status=404)
        body, kind = files[name]
        return view.bytes(body, headers={"Content-Type": kind, **SECURITY_HEADERS})

    async def json_read(view: Any, key: tuple, work: Callable[[], Any]) -> Any:
        try:
            body = await sources.read(key, work)
        except TimeoutError:
            return view.json({"error": f"ClickHouse took over {PAGE_TIMEOUT_S:.0f}s"}, status=504)
        except Exception as exc:
            log.warning("dashboard read %s failed: %r", key[0], exc)
            return view.json({"error": repr(exc)[:300]}, status=503)
        if body is None:
            return view.json({"error": "not found"}, status=404)
        return view.json(body, headers={"Cache-Control": "no-store"})

    class IndexPage(View):
        async def get(self, request: Any) -> Any:
            return file_response(self, "index.html")

    class ProductPage(View):
        async def get(self, request: Any, product_id: str) -> Any:
            return file_response(self, "product.html")

    class StaticFile(View):
        async def get(self, request: Any, name: str) -> Any:
            return file_response(self, name)

    class PipelineData(View):
        async def get(self, request: Any) -> Any:
            body = {
                "generated_at": assemble.to_json(sources.clock()),
                **assemble.to_json(sources.sampler.figures()),
                "model": sources.model_status(),
            }
            return self.json(body, headers={"Cache-Control": "no-store"})

    class ReputationData(View):
        async def get(self, request: Any) -> Any:
            try:
                args = {
                    "limit": int_param(request.query, "limit", 10, 1, 50),
                    "min_reviews": int_param(request.query, "min_reviews", 5, 0, 100_000),
                    "categories": int_param(request.query, "categories", 10, 1, 50),
                }
            except BadParameter as error:
                return self.json({"error": str(error)}, status=400)
            now = sources.clock()
            return await json_read(
                self,
                ("reputation", *sorted(args.items())),
                lambda: assemble.reputation(sources.clickhouse, now, **args),
            )

    class AlertData(View):
        async def get(self, request: Any) -> Any:
            try:
                limit = int_param(request.query, "limit", 20, 1, 100)
                samples = int_param(request.query, "samples", 3, 0, 10)
            except BadParameter as error:
                return self.json({"error": str(error)}, status=400)
            now = sources.clock()
            return await json_read(
                self,
                ("alerts", limit, samples),
                lambda: assemble.alerts(sources.clickhouse, now, limit=limit, samples=samples),
            )

    class ModelData(View):
        async def get(self, request: Any) -> Any:
            now, card = sources.clock(), sources.served_card()
            return await json_read(
                self,
                ("model", card if isinstance(card, str) else card.version),
                lambda: assemble.model_health(sources.clickhouse, card, sources.monitor, now),
            )

    class ProductData(View):
        async def get(self, request: Any, product_id: str) -> Any:
            try:
                hours = int_param(request.query, "hours", 6, 1, 24)
                reviews = int_param(request.query, "reviews", 50, 1, 200)
            except BadParameter as error:
                return self.json({"error": str(error)}, status=400)
            now = sources.clock()
            return await json_read(
                self,
                ("product", product_id, hours, reviews),
                lambda: assemble.product(
                    sources.clickhouse, product_id, now, hours=hours, reviews=reviews
                ),
            )

    routes: Mapping[str, type] = {
        "/": IndexPage,
        "/products/{product_id}": ProductPage,
        "/dashboard/static/{name:.+}": StaticFile,
        "/dashboard/api/pipeline": PipelineData,
        "/dashboard/api/reputation": ReputationData,
        "/dashboard/api/alerts": AlertData,
        "/dashboard/api/model": ModelData,
        "/dashboard/api/products/{product_id}": ProductData,
    }
    for path, view in routes.items():
        app.page(path, name=f"dashboard-{view.__name__}")(view)
