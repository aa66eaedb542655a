"""The live page inside the Faust worker: its routes, its ClickHouse thread and the timer
that samples the pipeline metrics."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from stream.dashboard.pages import DashboardSources, register_pages
from stream.dashboard.pipeline import SAMPLE_EVERY_S, PipelineSampler
from stream.sink.connection import connect
from stream.sink.proxies import LazyClickHouse, SerialisedClickHouse

if TYPE_CHECKING:
    import faust

    from model.card import ModelCard
    from stream.config import ClickHouseConfig, MonitorConfig
    from stream.metrics import Metrics
    from stream.sink.backend import ClickHouse


def install_dashboard(
    app: faust.App,
    *,
    metrics: Metrics,
    clickhouse_config: ClickHouseConfig,
    monitor: MonitorConfig,
    model_status: Callable[[], dict[str, Any]],
    served_card: Callable[[], ModelCard | str],
    shared: tuple[ClickHouse, Executor] | None = None,
) -> DashboardSources:
    """Register ``GET /``, ``/products/<id>`` and their data routes on ``app``.

    The page reads ClickHouse on a thread of its own, never on the batch's: with a server,
    through its own connection (opened on first use); with embedded chdb (one database per
    process) pass ``shared`` = the worker's connection and the one thread that may use it, so
    its reads queue behind the batch's inserts instead of running beside them."""
    if shared is None:
        clickhouse: ClickHouse = LazyClickHouse(lambda: connect(clickhouse_config))
    else:
        clickhouse = SerialisedClickHouse(*shared)
    executor = ThreadPoolExecutor(1, thread_name_prefix="dashboard")
    sources = DashboardSources(
        clickhouse=clickhouse,
        executor=executor,
        sampler=PipelineSampler(metrics.registry),
        model_status=model_status,
        served_card=served_card,
        monitor=monitor,
    )
    register_pages(app, sources)

    @app.timer(SAMPLE_EVERY_S, name="reviewpulse.dashboard_sample")
    async def sample_metrics() -> None:
        sources.sampler.sample()

    @app.on_before_shutdown.connect
    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        executor.submit(clickhouse.close)  # after any read in flight
        executor.shutdown(wait=False)

    return sources
