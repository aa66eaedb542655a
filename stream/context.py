"""The worker's resources, opened once at start-up and shared by the agent and the pages.

``WorkerContext.open(config)`` does the slow, blocking start-up work: the model, jieba, the
ClickHouse connection and its migrations. Each blocking resource comes with the one thread
that may use it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from stream.config import ModelConfig, WorkerConfig
from stream.keywords import Keywords
from stream.metrics import Metrics
from stream.pipeline.exits import Stop, hard_stop
from stream.pipeline.steps import Predictor, ReviewWriter
from stream.sink.backend import ClickHouse

log = logging.getLogger(__name__)


def _one_thread(name: str) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix=name)


@dataclass
class WorkerContext:
    """Everything the agent and the web pages share. ``clickhouse`` is used only on
    ``clickhouse_executor``, ``model`` only on ``model_executor``, ``keywords`` (jieba) only
    on ``keywords_executor``."""

    config: WorkerConfig
    model: Predictor
    clickhouse: ClickHouse
    store: ReviewWriter
    keywords: Keywords
    metrics: Metrics
    stop: Stop = hard_stop
    model_executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("model"))
    keywords_executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("keywords"))
    clickhouse_executor: ThreadPoolExecutor = field(
        default_factory=lambda: _one_thread("clickhouse")
    )

    @classmethod
    def open(cls, config: WorkerConfig, *, migrate: bool = True) -> WorkerContext:
        """Load the model and jieba, connect to ClickHouse and migrate (or check) it."""
        from stream.sink.connection import connect
        from stream.sink.migrations import migrate as run_migrations
        from stream.sink.store import ReviewStore

        model = load_served_model(config.model)
        keywords = Keywords.load(limit=config.batch.keywords_limit)
        clickhouse = connect(config.clickhouse)
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
            {"name": config.model.model_name, "version": model.version, "runtime": model.runtime}
        )
        return cls(
            config=config,
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


def load_served_model(config: ModelConfig) -> Predictor:
    """The model ``config`` names, resolved in the registry once and loaded."""
    from model.predictor import SentimentModel
    from model.registry import resolve_model_dir

    directory = resolve_model_dir(config.model_registry, config.model_name, config.model_version)
    model = SentimentModel.load(
        directory,
        max_length=config.model_max_length,
        threads=config.model_threads,
        runtime=config.model_runtime,
        token_budget=config.model_token_budget,
    )
    log.info("model %s loaded from %s (%s runtime)", model.version, directory, model.runtime)
    return model
