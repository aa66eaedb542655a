"""The steps of a batch, one job each. ``chain.BatchChain`` runs them in order.

Blocking work runs on the executor of the resource it uses: the model on the model thread,
jieba on the keywords thread or child process (``extraction``), ClickHouse on the ClickHouse
thread. A step that fails raises;
retrying is the caller's concern (``retry.Retrying``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from model.cputime import ThreadCpu
from model.text import clean_text
from stream.config import BatchConfig
from stream.dlq import MAX_KEPT_KEY_BYTES, DlqLimit, build_dead_letter, dead_letter_headers
from stream.events import DeadLetter, to_json_bytes
from stream.kafka import Outgoing
from stream.metrics import Charged, Metrics
from stream.pipeline.extraction import Extracted
from stream.pipeline.inference import ModelRunner
from stream.rows import ClassifiedReview, ReviewRow, build_review_row, build_sentiment_event
from stream.serving.holder import Predictor
from stream.validation import InvalidEvent, ValidReview, parse_review

log = logging.getLogger(__name__)

Sender = Callable[[Sequence[Outgoing]], Awaitable[None]]
"""Sends records to one topic and returns once the broker acknowledged all of them."""

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ModelSource(Protocol):
    """Where a batch gets its model: ``stream.serving.holder.ModelHolder``. ``current`` is
    read once per batch, so a batch never mixes model versions."""

    current: Predictor


class ShadowOffer(Protocol):
    """``stream.serving.shadow.ShadowRunner``: takes a copy of a classified batch for the
    shadow candidate without waiting for it."""

    def offer(self, classified: Sequence[ClassifiedReview], served_seconds: float) -> None: ...


class ReviewWriter(Protocol):
    """What the worker needs of ``stream.sink.store.ReviewStore``."""

    def write_reviews(self, rows: Sequence[ReviewRow], *, token: str | None = None) -> int: ...


class TermsSource(Protocol):
    """Keyword extraction for a batch of cleaned texts, off the event loop
    (``stream.pipeline.extraction``): each text's terms and the CPU seconds they took."""

    def __call__(self, texts: Sequence[str]) -> Awaitable[Extracted]: ...


class WindowStore(Protocol):
    """Where the dead-letter limit's window survives restarts
    (``stream.pipeline.dlq_state.DlqWindowFile``)."""

    def load(self) -> list[bool]: ...

    def save(self, outcomes: list[bool]) -> None: ...


@dataclass(frozen=True)
class Incoming:
    """One consumed message, as the broker delivered it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(frozen=True)
class SortedBatch:
    """A batch after validation: reviews to classify, and dead letters with their keys."""

    valid: list[ValidReview]
    dead: list[tuple[DeadLetter, bytes | None]]


class DlqLimitExceeded(RuntimeError):
    """Nearly everything was invalid: a bad deploy upstream, not bad data."""


class Validate:
    """Messages in, valid reviews and dead-letter records out. Counts every message into
    the dead-letter limit and raises :class:`DlqLimitExceeded` once it trips, before
    anything of the batch is published. With ``window``, the limit's window is restored at
    start and saved after each batch, so a restart continues it.

    ``poison`` (position -> crashes, from ``poison.PoisonGuard``) names messages that are
    dead-lettered as ``poison`` without being read."""

    def __init__(
        self,
        batch: BatchConfig,
        metrics: Metrics,
        *,
        clock: Clock = utc_now,
        window: WindowStore | None = None,
    ) -> None:
        self.max_text_chars = batch.max_text_chars
        self.max_event_bytes = batch.max_event_bytes
        self.max_future_skew_s = batch.max_future_skew_s
        self.limit = DlqLimit(batch.dlq_limit_ratio, batch.dlq_limit_window)
        self.metrics = metrics
        self.clock = clock
        self.window = window
        if window is not None:
            self.limit.restore(window.load())

    def __call__(
        self,
        messages: Sequence[Incoming],
        poison: Mapping[tuple[str, int, int], int] | None = None,
    ) -> SortedBatch:
        started_cpu, started_wall = time.thread_time(), time.perf_counter()
        # clean_text is a stage of its own. Its wall time is summed (perf_counter is read
        # without a system call, thread_time is not: two readings a message cost more than
        # the cleaning) and its share of the loop's wall time gets that share of its CPU time.
        cleaning = [0.0]

        def clean(text: str) -> str:
            started = time.perf_counter()
            cleaned = clean_text(text)
            cleaning[0] += time.perf_counter() - started
            return cleaned

        failed_at = self.clock()
        valid: list[ValidReview] = []
        dead: list[tuple[DeadLetter, bytes | None]] = []
        for message in messages:
            where = (message.topic, message.partition, message.offset)
            crashes = poison.get(where) if poison else None
            result: ValidReview | InvalidEvent
            if crashes is not None:
                result = InvalidEvent(
                    "poison",
                    f"the worker died {crashes} times with this message in hand "
                    f"({message.topic} partition {message.partition} offset "
                    f"{message.offset}); dead-lettered without reading it",
                )
            else:
                result = parse_review(
                    message.value,
                    max_text_chars=self.max_text_chars,
                    max_event_bytes=self.max_event_bytes,
                    now=failed_at,
                    max_future_skew_s=self.max_future_skew_s,
                    clean=clean,
                )
            if isinstance(result, InvalidEvent):
                record = build_dead_letter(
                    result,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                    headers=message.headers,
                    failed_at=failed_at,
                )
                key = message.key
                dead.append((record, key if key is None else key[:MAX_KEPT_KEY_BYTES]))
            else:
                valid.append(replace(result, source=where))
            self.limit.record(isinstance(result, InvalidEvent))
        spent = time.thread_time() - started_cpu
        wall = time.perf_counter() - started_wall
        cleaned = spent * min(cleaning[0] / wall, 1.0) if wall > 0 else 0.0
        self.metrics.add_stage_cpu({"decode_validate": spent - cleaned, "clean": cleaned})
        self.metrics.dead_letter_share.set(self.limit.dead_share)
        if self.window is not None:
            self.window.save(self.limit.outcomes())
        if self.limit.tripped:
            reset = ""
            if self.window is not None:
                saved = getattr(self.window, "path", "the saved window")
                reset = f"; this survives restarts: remove {saved} once the cause is fixed"
            raise DlqLimitExceeded(
                f"DLQ limit: {self.limit.dead_share:.0%} of the last {self.limit.window} events "
                f"were invalid (limit {self.limit.ratio:.0%}){reset}"
            )
        return SortedBatch(valid, dead)


class PublishDeadLetters:
    """Dead-letter records to the dead-letter topic, acknowledged."""

    def __init__(self, send: Sender, metrics: Metrics) -> None:
        self.send = send
        self.metrics = metrics

    async def __call__(self, dead: Sequence[tuple[DeadLetter, bytes | None]]) -> None:
        await self.send(
            [(key, to_json_bytes(record), dead_letter_headers(record)) for record, key in dead]
        )
        for record, _ in dead:
            self.metrics.events_dead_lettered.labels(record.reason).inc()


class Classify:
    """jieba (``terms``: its thread or its child process) and one model call (``run_model``:
    the model thread or the model's child process), side by side; one
    :class:`ClassifiedReview` per review.

    The model is taken from ``models`` once per batch: the whole batch is classified by one
    model and carries its version, and a model swapped in meanwhile serves the next batch.
    ``shadow``, if given, is offered the classified batch and never waited for."""

    def __init__(
        self,
        models: ModelSource,
        terms: TermsSource,
        *,
        run_model: ModelRunner,
        metrics: Metrics,
        shadow: ShadowOffer | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.models = models
        self.terms = terms
        self.run_model = run_model
        self.metrics = metrics
        self.shadow = shadow
        self.clock = clock

    async def __call__(self, valid: Sequence[ValidReview]) -> list[ClassifiedReview]:
        model = self.models.current  # one model, one version, for the whole batch
        texts = [review.clean_text for review in valid]
        cpu = ThreadCpu()  # tokenize and forward, and segment, where each ran
        started = time.perf_counter()
        (terms, segment_seconds), (predictions, model_seconds) = await asyncio.gather(
            self.terms(texts), self.run_model(model, texts, cpu)
        )
        self.metrics.model_latency.observe(time.perf_counter() - started)
        cpu.add("segment", segment_seconds)
        self.metrics.add_stage_cpu(cpu.seconds)
        build_started = time.thread_time()
        if len(predictions) != len(texts):
            raise ValueError(f"model returned {len(predictions)} results for {len(texts)} texts")
        processed_at = self.clock()
        version = model.version
        classified = [
            ClassifiedReview.of(
                review, term, prediction, model_version=version, processed_at=processed_at
            )
            for review, term, prediction in zip(valid, terms, predictions, strict=True)
        ]
        self.metrics.add_stage_cpu({"build": time.thread_time() - build_started})
        if self.shadow is not None:
            try:
                self.shadow.offer(classified, model_seconds)
            except Exception:  # the shadow is never on the batch's critical path
                log.exception("shadow offer failed; the batch goes on without it")
        return classified


class PublishSentiments:
    """One ``review.sentiment`` event per review (key = product_id), acknowledged."""

    def __init__(self, send: Sender, metrics: Metrics, *, clock: Clock = utc_now) -> None:
        self.send = send
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, classified: Sequence[ClassifiedReview]) -> None:
        build_started = time.thread_time()
        events = [build_sentiment_event(c) for c in classified]
        encode_started = time.thread_time()
        outgoing: list[Outgoing] = [
            (c.review.event.product_id.encode(), to_json_bytes(event), None)
            for c, event in zip(classified, events, strict=True)
        ]
        encoded = time.thread_time()
        self.metrics.add_stage_cpu(
            {"build": encode_started - build_started, "encode": encoded - encode_started}
        )
        started = time.perf_counter()
        await Charged(self.send(outgoing), self._charge_produce)
        self.metrics.produce_latency.observe(time.perf_counter() - started)
        acked = self.clock()
        for c in classified:
            self.metrics.end_to_end_latency.observe(
                max(0.0, (acked - c.review.created_at).total_seconds())
            )

    def _charge_produce(self, seconds: float) -> None:
        self.metrics.add_stage_cpu({"produce": seconds})


def insert_token(classified: Sequence[ClassifiedReview]) -> str | None:
    """A deterministic insert token for the batch: its offset range per topic partition,
    ``review.created:0:100-163;review.created:3:17-40``. A retry of the same batch sends the
    same token, so ClickHouse (>= 22.2, chdb) drops what already landed and fills in what a
    half-applied insert missed. None when a review has no source position."""
    ranges: dict[tuple[str, int], list[int]] = {}
    for c in classified:
        if c.review.source is None:
            return None
        topic, partition, offset = c.review.source
        ranges.setdefault((topic, partition), []).append(offset)
    return ";".join(
        f"{topic}:{partition}:{min(offsets)}-{max(offsets)}"
        for (topic, partition), offsets in sorted(ranges.items())
    )


class StoreRows:
    """The ``reviews`` rows, inserted on the ClickHouse thread (idempotent by review_id, with
    the batch's :func:`insert_token`)."""

    def __init__(self, store: ReviewWriter, executor: Executor, metrics: Metrics) -> None:
        self.store = store
        self.executor = executor
        self.metrics = metrics

    async def __call__(self, classified: Sequence[ClassifiedReview]) -> None:
        build_started = time.thread_time()
        rows = [build_review_row(c) for c in classified]
        token = insert_token(classified)
        self.metrics.add_stage_cpu({"build": time.thread_time() - build_started})
        started = time.perf_counter()
        inserted = await asyncio.get_running_loop().run_in_executor(
            self.executor, self._write, rows, token
        )
        self.metrics.clickhouse_insert_latency.observe(time.perf_counter() - started)
        self.metrics.clickhouse_rows.inc(inserted)

    def _write(self, rows: list[ReviewRow], token: str | None) -> int:
        """On the ClickHouse thread; its CPU time there is the ``insert`` stage (the
        server's, or embedded ClickHouse's own threads, are not in it)."""
        started = time.thread_time()
        try:
            return self.store.write_reviews(rows, token=token)
        finally:
            self.metrics.add_stage_cpu({"insert": time.thread_time() - started})
