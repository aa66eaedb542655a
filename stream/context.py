"""The worker's resources, opened once at start-up and shared by the agent and the pages.

``WorkerContext.open(config)`` does the slow, blocking start-up work: the model, jieba, the
ClickHouse connection and its migrations. Each blocking resource comes with the one thread
that may use it; the model holder lets the served model change between batches (hot reload,
``stream.serving``), and the shadow runner scores a candidate on its own thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from stream.config import WorkerConfig
from stream.health import Heartbeat
from stream.kafka import ConsumerLag
from stream.keywords import Keywords
from stream.metrics import Metrics
from stream.pipeline.exits import Stop, hard_stop
from stream.pipeline.steps import ReviewWriter
from stream.serving.holder import ModelHolder, Predictor
from stream.serving.reload import RegistryWatcher, Reloader, model_info
from stream.serving.shadow import ShadowRunner
from stream.sink.backend import ClickHouse

log = logging.getLogger(__name__)


T = TypeVar("T")


def _one_thread(name: str) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix=name)


@dataclass
class StartupTimings:
    """Wall seconds of each start-up part, for the start-up log line."""

    seconds: dict[str, float] = field(default_factory=dict)

    def timed(self, name: str, work: Callable[..., T]) -> Callable[..., T]:
        def run(*args: Any, **kwargs: Any) -> T:
            started = time.perf_counter()
            try:
                return work(*args, **kwargs)
            finally:
                self.seconds[name] = time.perf_counter() - started

        return run

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.2f}s" for name, seconds in self.seconds.items())


@dataclass
class WorkerContext:
    """Everything the agent and the web pages share. ``clickhouse`` is used only on
    ``clickhouse_executor``, the served model (``models.current``) only on
    ``model_executor``, ``keywords`` (jieba) only on ``keywords_executor``; models are
    loaded on ``loader_executor``; the shadow candidate runs on the shadow's own thread.
    ``POST /predict`` scores on ``predict_executor``, only while the agent holds no batch
    (the stream first); the consumer-lag probe runs on ``lag_executor``. The agent
    ticks ``heartbeat`` around each batch; ``lag`` is the last measured lag per assigned
    partition (``/health/ready``)."""

    config: WorkerConfig
    models: ModelHolder
    clickhouse: ClickHouse
    store: ReviewWriter
    keywords: Keywords
    metrics: Metrics
    shadow: ShadowRunner | None = None
    shadow_clickhouse: ClickHouse | None = None  # the shadow thread's own connection
    # The poison guard's crash lookups, on their own connection and thread, so a batch's
    # lookup never waits behind the previous batch's insert (None: on clickhouse's thread).
    ledger_clickhouse: ClickHouse | None = None
    reloader: Reloader | None = None  # None: hot reload and shadow scoring are off
    stop: Stop = hard_stop
    # More parts of /health by name (the alert engine's): each returns a dict with a status.
    health_parts: dict[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)
    heartbeat: Heartbeat = field(default_factory=Heartbeat)
    lag: dict[int, ConsumerLag] = field(default_factory=dict)
    model_executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("model"))
    predict_executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("predict"))
    lag_executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("lag"))
    keywords_executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("keywords"))
    clickhouse_executor: ThreadPoolExecutor = field(
        default_factory=lambda: _one_thread("clickhouse")
    )
    loader_executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("model-loader"))
    ledger_executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("crash-ledger"))

    @classmethod
    def open(cls, config: WorkerConfig, *, migrate: bool = True) -> WorkerContext:
        """Load the model and jieba, connect to ClickHouse and migrate (or check) it."""
        from stream.sink.connection import connect
        from stream.sink.migrations import migrate as run_migrations
        from stream.sink.proxies import LazyClickHouse
        from stream.sink.shadow import ShadowStore
        from stream.sink.store import ReviewStore

        # Sequential on purpose: loading the model on a thread beside jieba and ClickHouse
        # was slower (all three hold the GIL most of the time: imports, dictionary building).
        timings = StartupTimings()
        model = timings.timed("model", load_served_model)(config)
        keywords = timings.timed("keywords", Keywords.load)(limit=config.batch.keywords_limit)
        clickhouse_started = time.perf_counter()
        separate_ddl = migrate and config.clickhouse.for_migrations() != config.clickhouse
        if separate_ddl:
            # Migrations connect as the DDL user; the worker's own user needs no DDL rights.
            ddl = connect(config.clickhouse.for_migrations())
            try:
                log.info("ClickHouse migrations applied: %s", run_migrations(ddl) or "none needed")
            finally:
                ddl.close()
        clickhouse = connect(config.clickhouse)
        if migrate and not separate_ddl:
            applied = run_migrations(clickhouse)
            log.info("ClickHouse migrations applied: %s", applied or "none needed")
        elif not migrate and not clickhouse.query("EXISTS TABLE reviews")[0][0]:
            raise SystemExit(
                f"ClickHouse database {clickhouse.database!r} has no reviews table: "
                "run `reviewpulse migrate` or start the worker without --no-migrate"
            )
        timings.seconds["clickhouse"] = time.perf_counter() - clickhouse_started
        log.info("start-up: %s", timings)
        metrics = Metrics()
        metrics.model_info.info(model_info(config.model.model_name, model))
        serving = config.serving
        # The shadow writes through its own connection, opened on the shadow thread.
        shadow_clickhouse = LazyClickHouse(lambda: connect(config.clickhouse))
        context = cls(
            config=config,
            models=ModelHolder(
                model, follows_current=config.model.model_version.lower() == "current"
            ),
            clickhouse=clickhouse,
            store=ReviewStore(clickhouse),
            keywords=keywords,
            metrics=metrics,
            shadow=ShadowRunner(
                ShadowStore(shadow_clickhouse),
                metrics,
                queue_batches=serving.shadow_queue_batches,
                timeout_s=serving.shadow_timeout_s,
            ),
            shadow_clickhouse=shadow_clickhouse,
            ledger_clickhouse=LazyClickHouse(lambda: connect(config.clickhouse)),
        )
        if serving.model_reload_interval_s:
            context.reloader = Reloader(
                context.models,
                RegistryWatcher(config.model, serving),
                context.loader_executor,
                metrics,
                model_name=config.model.model_name,
                shadow=context.shadow,
            )
            # A shadow that runs already (SHADOW survives restarts) scores from the first batch.
            context.reloader.apply(context.reloader.watcher.check(model.version, None))
        return context

    def close(self) -> None:
        if self.shadow is not None:
            self.shadow.close()
        self.loader_executor.shutdown(wait=True, cancel_futures=True)
        self.predict_executor.shutdown(wait=True, cancel_futures=True)
        self.lag_executor.shutdown(wait=True, cancel_futures=True)
        self.model_executor.shutdown(wait=True)
        self.keywords_executor.shutdown(wait=True)
        self.clickhouse_executor.shutdown(wait=True)
        self.ledger_executor.shutdown(wait=True)
        self.clickhouse.close()
        if self.ledger_clickhouse is not None:
            self.ledger_clickhouse.close()
        if self.shadow_clickhouse is not None:
            self.shadow_clickhouse.close()


def load_served_model(config: WorkerConfig) -> Predictor:
    """The model ``config`` names, resolved in the registry, loaded and checked by the
    canary; a worker does not start on a model that fails it."""
    from stream.serving.loader import ModelRefused, load_checked

    try:
        return load_checked(
            config.model,
            config.model.model_version,
            tolerance=config.serving.model_canary_tolerance,
        )
    except ModelRefused as exc:
        raise SystemExit(f"cannot serve: {exc}") from exc
