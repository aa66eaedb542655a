"""The worker's dependencies and the ``faust.App`` built from ``Settings``.

No module-level app: ``create_app(settings)`` returns a configured app, and
``build_worker_app(context)`` adds the review agent, the web pages and extensions
(the reputation alert engine) to it. ``WorkerContext.open(settings)`` does the slow,
blocking start-up work once: model, jieba, ClickHouse connection and migrations.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import faust

from stream.keywords import Keywords
from stream.metrics import Metrics
from stream.settings import Settings

if TYPE_CHECKING:
    from stream.sink.backend import ClickHouse

log = logging.getLogger(__name__)

# Exit codes of a hard stop: the batch in hand is NOT acked, so its offsets never commit and
# the next worker re-reads it (idempotent sinks absorb the repeat).
EXIT_SINK_DOWN = 70  # ClickHouse insert, produce or model kept failing after all retries
EXIT_DLQ_LIMIT = 71  # nearly everything was being dead-lettered: a bad deploy, not bad data
EXIT_BATCH_ERROR = 72  # an unexpected error inside the batch body
EXIT_INTERRUPTED = 75  # cancelled (shutdown) in the middle of a batch


class Predictor(Protocol):
    """What the worker needs of ``model.predictor.SentimentModel``."""

    version: str
    runtime: str

    def predict_batch(self, texts: Sequence[str]) -> list[Any]: ...


class ReviewWriter(Protocol):
    def write_reviews(self, rows: Sequence[dict[str, Any]]) -> int: ...


def hard_stop(code: int, message: str) -> NoReturn:
    """Log, flush and leave the process at once: no ``finally:`` runs, so ``take()`` cannot
    ack the batch in hand and no further offset commit happens."""
    log.critical("%s (exit code %d)", message, code)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@dataclass
class WorkerContext:
    """Everything the agent and the web pages share. Blocking objects come with the one
    thread that may use them: ``clickhouse`` only on ``clickhouse_executor``, ``model`` only
    on ``model_executor``, ``keywords`` (jieba) only on ``keywords_executor``."""

    settings: Settings
    model: Predictor
    clickhouse: ClickHouse
    store: ReviewWriter
    keywords: Keywords
    metrics: Metrics
    stop: Callable[[int, str], NoReturn] = hard_stop
    model_executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="model")
    )
    keywords_executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="keywords")
    )
    clickhouse_executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="clickhouse")
    )

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> WorkerContext:
        """Load the model and jieba, connect to ClickHouse and migrate (or check) it."""
        from model.registry import load_model, resolve_model_dir
        from stream.sink.backend import connect
        from stream.sink.migrations import migrate as run_migrations
        from stream.sink.store import ReviewStore

        model_dir = resolve_model_dir(
            settings.model_registry, settings.model_name, settings.model_version
        )
        model = load_model(settings)
        log.info("model %s loaded from %s (%s runtime)", model.version, model_dir, model.runtime)
        keywords = Keywords.load(limit=settings.keywords_limit)
        clickhouse = connect(settings)
        if migrate:
            applied = run_migrations(clickhouse)
            log.info("ClickHouse migrations applied: %s", applied or "none needed")
        elif not clickhouse.query("EXISTS TABLE reviews")[0][0]:
            raise SystemExit(
                f"ClickHouse database {clickhouse.database!r} has no reviews table: "
                "run `reviewpulse migrate` or start the worker without --no-migrate"
            )
        metrics = Metrics()
        metrics.model_info.info(
            {"name": settings.model_name, "version": model.version, "runtime": model.runtime}
        )
        return cls(
            settings=settings,
            model=model,
            clickhouse=clickhouse,
            store=ReviewStore(clickhouse),
            keywords=keywords,
            metrics=metrics,
        )

    def close(self) -> None:
        self.model_executor.shutdown(wait=True)
        self.keywords_executor.shutdown(wait=True)
        self.clickhouse_executor.shutdown(wait=True)
        self.clickhouse.close()


def create_app(settings: Settings) -> faust.App:
    """A ``faust.App`` configured for at-least-once processing on Kafka or Tansu."""
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)  # Faust makes one level only
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_broker.split(",")],
        processing_guarantee="at_least_once",
        autodiscover=False,
        store="memory://",  # no tables: ClickHouse holds all state (Tansu defect A)
        datadir=str(settings.worker_data_dir / settings.app_id),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_commit_interval=settings.commit_interval_s,
        producer_acks=-1,
        producer_request_timeout=settings.sink_timeout_s,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
    )


def build_worker_app(context: WorkerContext) -> faust.App:
    """The worker: review agent + web pages + extensions, all sharing ``context``."""
    from stream.agents import register_review_agent
    from stream.web import register_pages

    app = create_app(context.settings)
    register_review_agent(app, context)
    register_pages(app, context)
    install_extensions(app, context)
    return app


def install_extensions(app: faust.App, context: WorkerContext) -> None:
    """Features that ride on the worker: the reputation alert engine (timer + /reports/*).

    With a ClickHouse server the engine opens its own connection; with embedded chdb (one
    database per process) it shares the worker's, serialised through the ClickHouse thread."""
    from stream.reputation.engine import install as install_reputation

    shared = None
    if context.settings.clickhouse_backend == "embedded":
        shared = SerialisedClickHouse(context.clickhouse, context.clickhouse_executor)
    install_reputation(app, context.settings, clickhouse=shared, metrics=context.metrics)


class SerialisedClickHouse:
    """A ClickHouse handle whose calls all run on one executor thread (blocking callers)."""

    def __init__(self, clickhouse: ClickHouse, executor: ThreadPoolExecutor) -> None:
        self._clickhouse = clickhouse
        self._executor = executor
        self.database = clickhouse.database

    def execute(self, sql: str) -> None:
        self._executor.submit(self._clickhouse.execute, sql).result()

    def query(self, sql: str) -> list[tuple]:
        return self._executor.submit(self._clickhouse.query, sql).result()

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
        self._executor.submit(self._clickhouse.insert, table, columns, rows).result()

    def close(self) -> None:
        """The worker closes the shared connection itself."""
