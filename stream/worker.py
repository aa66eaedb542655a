"""The worker, assembled: the Faust app with the review agent, the web pages, the
reputation alert engine and the model reload timer, all sharing one ``WorkerContext``; and
the task that watches the context's start-up."""

from __future__ import annotations

import logging

import faust

from stream.agents import register_review_agent, require_single_actor
from stream.app import create_app
from stream.context import WorkerContext
from stream.web import register_pages

log = logging.getLogger(__name__)


def build_worker_app(context: WorkerContext) -> faust.App:
    """The worker app: review agent + web pages + alert engine, sharing ``context``."""
    config = context.config
    app = create_app(config.kafka, config.batch, config.web)
    install_startup(app, context)
    register_review_agent(app, context)
    register_pages(app, context)
    install_alerting(app, context)
    install_reload(app, context)
    install_dashboard(app, context)
    require_single_actor(app)  # agents added by any install above: one actor each
    return app


def install_startup(app: faust.App, context: WorkerContext) -> None:
    """Once the app runs, wait for the resources being prepared (``context.startup``): log
    how long each part took and freeze the heap (``stream.heap``), or stop the worker when
    one failed. ``/health`` shows it."""
    context.health_parts["startup"] = context.startup.status

    @app.task
    async def watch_startup() -> None:
        await context.startup.wait()  # stops the worker when a part failed
        frozen = context.heap.freeze()  # stream.heap: out of the collector's way
        log.info("start-up: %s; %d objects frozen", context.startup, frozen)


def install_reload(app: faust.App, context: WorkerContext) -> None:
    """Every ``model_reload_interval_s`` (0: never), look at the registry's CURRENT and
    SHADOW pointers and apply what changed between batches (``stream.serving.reload``)."""
    reloader = context.reloader
    if reloader is None:
        log.info("hot reload and shadow scoring are off (model-reload-interval-s 0)")
        return

    @app.timer(context.config.serving.model_reload_interval_s, name="reviewpulse.model_reload")
    async def reload_models() -> None:
        if not context.startup.done:  # the start-up serves the first model
            return
        try:
            await reloader.poll()
        except Exception:
            log.exception("looking at the model registry failed; trying again at the next tick")


def install_alerting(app: faust.App, context: WorkerContext) -> None:
    """The reputation alert engine (timer + /reports/*) rides on the worker.

    With a ClickHouse server the engine opens its own connection; with embedded chdb (one
    database per process) it shares the worker's, serialised through the ClickHouse thread."""
    from stream.monitoring.health import ServedModel
    from stream.reputation.install import install_reputation
    from stream.sink.proxies import SerialisedClickHouse

    config = context.config
    shared = None
    if config.clickhouse.clickhouse_backend == "embedded":
        shared = SerialisedClickHouse(context.clickhouse, context.clickhouse_executor)
    context.health_parts["alerts"] = install_reputation(
        app,
        config.kafka,
        config.alerts,
        config.clickhouse,
        clickhouse=shared,
        metrics=context.metrics,
        monitor=config.monitor,
        served_model=lambda: (
            ServedModel.of(context.models.current) if context.models.loaded else None
        ),
    )


def install_dashboard(app: faust.App, context: WorkerContext) -> None:
    """The live page (``GET /``, ``/products/<id>``, ``stream.dashboard``). Its reads run
    on its own thread: with a ClickHouse server over its own connection, with embedded chdb
    through the worker's ClickHouse thread."""
    from stream.dashboard.install import install_dashboard as install

    config = context.config
    shared = None
    if config.clickhouse.clickhouse_backend == "embedded":
        shared = (context.clickhouse, context.clickhouse_executor)
    install(
        app,
        metrics=context.metrics,
        clickhouse_config=config.clickhouse,
        monitor=config.monitor,
        model_status=context.models.status,
        served_card=lambda: (
            getattr(context.models.current, "card", None) or "no model card"
            if context.models.loaded
            else "the model is still loading"
        ),
        shared=shared,
    )
