"""The worker, assembled: the Faust app with the review agent, the web pages and the
reputation alert engine, all sharing one ``WorkerContext``."""

from __future__ import annotations

import faust

from stream.agents import register_review_agent
from stream.app import create_app
from stream.context import WorkerContext
from stream.web import register_pages


def build_worker_app(context: WorkerContext) -> faust.App:
    """The worker app: review agent + web pages + alert engine, sharing ``context``."""
    config = context.config
    app = create_app(config.kafka, config.batch, config.web)
    register_review_agent(app, context)
    register_pages(app, context)
    install_alerting(app, context)
    return app


def install_alerting(app: faust.App, context: WorkerContext) -> None:
    """The reputation alert engine (timer + /reports/*) rides on the worker.

    With a ClickHouse server the engine opens its own connection; with embedded chdb (one
    database per process) it shares the worker's, serialised through the ClickHouse thread."""
    from stream.reputation.install import install_reputation
    from stream.sink.proxies import SerialisedClickHouse

    config = context.config
    shared = None
    if config.clickhouse.clickhouse_backend == "embedded":
        shared = SerialisedClickHouse(context.clickhouse, context.clickhouse_executor)
    install_reputation(
        app,
        config.kafka,
        config.alerts,
        config.clickhouse,
        clickhouse=shared,
        metrics=context.metrics,
    )
