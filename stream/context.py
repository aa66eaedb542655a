"""The worker's resources, shared by the agent and the pages, prepared while Faust starts.

``WorkerContext.create(config)`` returns at once; ``context.prepare()`` then has the model,
jieba and ClickHouse (connect, migrate) prepared on their own threads (jieba: or in its child
process, ``keywords-executor``) while Faust starts and joins the consumer group
(``stream.startup``). Each blocking resource comes with the one thread (or process) that may
use it; the model holder lets the served model change between batches (hot
reload, ``stream.serving``), and the shadow runner scores a candidate on its own thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.config import WorkerConfig
from stream.health import Heartbeat
from stream.heap import HeapFreezer
from stream.kafka import ConsumerLag
from stream.metrics import Metrics
from stream.pipeline.exits import Stop, hard_stop
from stream.pipeline.extraction import KeywordsExtraction, KeywordsOnThread, KeywordsProcess
from stream.pipeline.inference import ModelExecution, ModelOnThread, ModelProcess
from stream.pipeline.steps import ReviewWriter
from stream.serving.holder import ModelHolder, Predictor
from stream.serving.reload import RegistryWatcher, Reloader, model_info
from stream.serving.shadow import ShadowRunner
from stream.sink.backend import ClickHouse
from stream.startup import PreparedClickHouse, PreparedKeywords, Startup

log = logging.getLogger(__name__)


def _one_thread(name: str) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix=name)


@dataclass
class WorkerContext:
    """Everything the agent and the web pages share. ``clickhouse`` is used only on
    ``clickhouse_executor``; batches are classified where ``inference`` runs the served
    model (``models.current``: on ``model_executor``, or in the model's child process); jieba
    only where ``terms`` runs it (its one thread, or its child process); models are
    loaded on ``loader_executor``; the shadow candidate runs on the shadow's own thread.
    ``POST /predict`` scores on ``predict_executor``, only while the agent holds no batch
    (the stream first); the consumer-lag probe runs on ``lag_executor``. The agent
    ticks ``heartbeat`` around each batch; ``lag`` is the last measured lag per assigned
    partition (``/health/ready``). ``startup`` holds the resources still being prepared;
    the agent takes no batch before it is done."""

    config: WorkerConfig
    models: ModelHolder
    clickhouse: ClickHouse
    store: ReviewWriter
    terms: KeywordsExtraction  # where a batch's keywords are extracted
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
    startup: Startup = field(default_factory=Startup)  # no parts: built whole, ready
    heap: HeapFreezer = field(default_factory=HeapFreezer)  # frozen once started
    model_executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("model"))
    predict_executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("predict"))
    lag_executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("lag"))
    clickhouse_executor: ThreadPoolExecutor = field(
        default_factory=lambda: _one_thread("clickhouse")
    )
    loader_executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("model-loader"))
    ledger_executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("crash-ledger"))
    inference: ModelExecution | None = None  # None: on model_executor

    def __post_init__(self) -> None:
        if self.inference is None:
            self.inference = ModelOnThread(self.model_executor)

    @classmethod
    def create(cls, config: WorkerConfig) -> WorkerContext:
        """The context, at once, its resources not prepared yet: build the app on it, then
        call :meth:`prepare` (the resources' work then overlaps Faust's start, not the
        imports and app building before it, which hold the GIL too)."""
        from stream.serving.loader import load_options
        from stream.sink.connection import connect
        from stream.sink.proxies import LazyClickHouse
        from stream.sink.shadow import ShadowStore
        from stream.sink.store import ReviewStore

        serving = config.serving
        metrics = Metrics()
        # The shadow writes through its own connection, opened on the shadow thread.
        shadow_clickhouse = LazyClickHouse(lambda: connect(config.clickhouse))
        clickhouse = PreparedClickHouse(config.clickhouse, lambda: connect(config.clickhouse))
        context = cls(
            config=config,
            models=ModelHolder(
                None, follows_current=config.model.model_version.lower() == "current"
            ),
            clickhouse=clickhouse,
            store=ReviewStore(clickhouse),
            terms=(
                KeywordsProcess(
                    limit=config.batch.keywords_limit,
                    restarted=metrics.keywords_process_restarts.inc,
                )
                if config.batch.keywords_executor == "process"
                else KeywordsOnThread(
                    PreparedKeywords(limit=config.batch.keywords_limit), _one_thread("keywords")
                )
            ),
            metrics=metrics,
            shadow=ShadowRunner(
                ShadowStore(shadow_clickhouse),
                metrics,
                queue_batches=serving.shadow_queue_batches,
                timeout_s=serving.shadow_timeout_s,
            ),
            shadow_clickhouse=shadow_clickhouse,
            ledger_clickhouse=LazyClickHouse(lambda: connect(config.clickhouse)),
            inference=(
                ModelProcess(
                    load_options(config.model), restarted=metrics.model_process_restarts.inc
                )
                if config.batch.model_executor == "process"
                else None
            ),
        )
        if serving.model_reload_interval_s:
            context.reloader = Reloader(
                context.models,
                RegistryWatcher(config.model, serving, warm=context.warm_model),
                context.loader_executor,
                metrics,
                model_name=config.model.model_name,
                shadow=context.shadow,
                heap=context.heap,
            )
        context.startup = Startup(stop=context.stop)
        return context

    def prepare(self, *, migrate: bool = True) -> None:
        """Prepare the model, jieba and ClickHouse (migrated, or checked when ``migrate`` is
        false) on their threads (``self.startup``); call it before the app runs. The keywords
        child process, having an interpreter of its own, is launched first and loads jieba
        beside the rest."""
        steps = [
            ("clickhouse", self.clickhouse_executor, lambda: prepare_clickhouse(self, migrate)),
            ("model", self.loader_executor, lambda: prepare_model(self)),
        ]
        if isinstance(self.inference, ModelProcess):  # loads what the loader thread will
            self.startup.watch("model-process", self.inference.start(served_directory(self.config)))
        if isinstance(self.terms, KeywordsProcess):
            self.startup.watch("keywords", self.terms.start())
        else:  # jieba on its thread: one more step, after the others
            steps.append(("keywords", self.terms.executor, self.terms.keywords.prepare))
        self.startup.begin(*steps)

    def close(self) -> None:
        if self.shadow is not None:
            self.shadow.close()
        self.loader_executor.shutdown(wait=True, cancel_futures=True)
        self.predict_executor.shutdown(wait=True, cancel_futures=True)
        self.lag_executor.shutdown(wait=True, cancel_futures=True)
        assert self.inference is not None
        self.inference.close()
        self.model_executor.shutdown(wait=True)
        self.terms.close()
        self.clickhouse_executor.shutdown(wait=True)
        self.ledger_executor.shutdown(wait=True)
        self.clickhouse.close()
        if self.ledger_clickhouse is not None:
            self.ledger_clickhouse.close()
        if self.shadow_clickhouse is not None:
            self.shadow_clickhouse.close()

    def warm_model(self, directory: Path) -> None:
        """Before a reload swaps in the model loaded from ``directory`` (on the loader
        thread): have the model process load it too, so no batch waits for that."""
        if isinstance(self.inference, ModelProcess):
            self.inference.load(directory)


def served_directory(config: WorkerConfig) -> Path | None:
    """The directory the served model will be loaded from, or None if the registry does not
    name one (the model's own loading then refuses it, and says why)."""
    from model.registry import resolve_model_dir

    model = config.model
    try:
        return resolve_model_dir(model.model_registry, model.model_name, model.model_version)
    except (FileNotFoundError, ValueError):
        return None


def prepare_clickhouse(context: WorkerContext, migrate: bool) -> None:
    """On the ClickHouse thread: connect, then apply the migrations (as the DDL user when
    one is configured: the worker's own user needs no DDL rights), or, when ``migrate`` is
    false, check that the schema is there."""
    from stream.sink.connection import connect
    from stream.sink.migrations import migrate as run_migrations

    config = context.config.clickhouse
    if migrate and config.for_migrations() != config:
        ddl = connect(config.for_migrations())
        try:
            applied = run_migrations(ddl)
        finally:
            ddl.close()
        context.clickhouse.query("SELECT 1")  # and the worker's own connection
    elif migrate:
        applied = run_migrations(context.clickhouse)
    else:
        if not context.clickhouse.query("EXISTS TABLE reviews")[0][0]:
            raise RuntimeError(
                f"ClickHouse database {config.clickhouse_database!r} has no reviews table: "
                "run `reviewpulse migrate` or start the worker without --no-migrate"
            )
        return
    log.info("ClickHouse migrations applied: %s", applied or "none needed")


def prepare_model(context: WorkerContext) -> None:
    """On the loader thread: load the served model (the canary must pass) and serve it; then
    apply what the registry says of a shadow (SHADOW survives restarts: a running shadow
    scores from the first batch). The reload timer waits for the start-up, so nothing else
    swaps models meanwhile."""
    model = load_served_model(context.config)
    context.models.install(model)
    context.metrics.model_info.info(model_info(context.config.model.model_name, model))
    if context.reloader is not None:
        context.reloader.apply(context.reloader.watcher.check(model.version, None))


def load_served_model(config: WorkerConfig) -> Predictor:
    """The model ``config`` names, resolved in the registry, loaded and checked by the
    canary; raises ``ModelRefused`` (the worker does not serve a model that fails it)."""
    from stream.serving.loader import load_checked

    return load_checked(
        config.model, config.model.model_version, tolerance=config.serving.model_canary_tolerance
    )
