"""The review agent: micro-batches from ``review.created`` to sentiment events and rows.

Per batch, in this order (ARCHITECTURE.md, "Rules"):
  1. validate every message; invalid ones become dead-letter records (raw bytes kept);
  2. check the DLQ limit (hard stop, no ack, when nearly everything is bad);
  3. publish the dead letters and wait for the broker's acks, while (concurrently)
  4. the valid reviews are segmented and classified in ONE model call, off the event loop,
  5. and their sentiment events are published and rows inserted (concurrently);
  6. once every one of those has been acknowledged, return: only then does ``take_events``
     ack the batch.
``take_events`` acks in a ``finally:``, so ``BatchProcessor.process`` never raises: a step that
keeps failing, a cancellation mid-batch, or a bug ends the process via ``context.stop``
(``os._exit``), which skips that ``finally:`` and leaves the batch's offsets uncommitted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import faust
from faust.types import EventT, TopicT

from stream.app import (
    EXIT_BATCH_ERROR,
    EXIT_DLQ_LIMIT,
    EXIT_INTERRUPTED,
    EXIT_SINK_DOWN,
    WorkerContext,
)
from stream.dlq import DlqLimit, build_dead_letter, dead_letter_headers
from stream.events import DeadLetter, to_json_bytes
from stream.keywords import ReviewTerms
from stream.rows import build_review_row, build_sentiment_event
from stream.validation import InvalidEvent, ValidReview, parse_review

log = logging.getLogger(__name__)
T = TypeVar("T")
Outgoing = tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]


def raw_topic(app: faust.App, name: str) -> TopicT:
    """A topic of raw bytes: we (de)serialise ourselves, so bad bytes reach validation."""
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def register_review_agent(app: faust.App, context: WorkerContext) -> BatchProcessor:
    settings = context.settings
    processor = BatchProcessor(
        context,
        output_topic=raw_topic(app, settings.output_topic),
        dlq_topic=raw_topic(app, settings.dlq_topic),
    )

    async def review_agent(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            await processor.process(events)

    app.agent(raw_topic(app, settings.input_topic), name="reviewpulse.reviews")(review_agent)
    return processor


def _headers(raw: Any) -> list[tuple[str, bytes | None]]:
    if not raw:
        return []
    items = raw.items() if isinstance(raw, Mapping) else raw
    return [(str(key), value) for key, value in items]


class BatchProcessor:
    """Turns one micro-batch into durable outputs, or stops the process trying."""

    def __init__(self, context: WorkerContext, *, output_topic: TopicT, dlq_topic: TopicT):
        self.context = context
        self.settings = context.settings
        self.metrics = context.metrics
        self.output_topic = output_topic
        self.dlq_topic = dlq_topic
        self.limit = DlqLimit(self.settings.dlq_limit_ratio, self.settings.dlq_limit_window)

    async def process(self, events: Sequence[EventT]) -> None:
        """Never raises (see module docstring)."""
        try:
            await self._process(events)
        except asyncio.CancelledError:
            self.context.stop(
                EXIT_INTERRUPTED,
                f"cancelled during a batch of {len(events)}; it is not acked and will be re-read",
            )
        except Exception as exc:
            log.exception("batch of %d failed", len(events))
            self.context.stop(
                EXIT_BATCH_ERROR, f"unexpected error in a batch, stopping without ack: {exc!r}"
            )

    async def _process(self, events: Sequence[EventT]) -> None:
        started = time.perf_counter()
        m = self.metrics
        m.events_consumed.inc(len(events))
        m.batch_size.observe(len(events))

        now = datetime.now(UTC)
        valid: list[ValidReview] = []
        dead: list[tuple[DeadLetter, bytes | None]] = []
        for event in events:
            message = event.message
            result = parse_review(
                message.value,
                max_text_chars=self.settings.max_text_chars,
                max_event_bytes=self.settings.max_event_bytes,
            )
            if isinstance(result, InvalidEvent):
                record = build_dead_letter(
                    result,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                    headers=_headers(message.headers),
                    failed_at=now,
                )
                dead.append((record, message.key))
                self.limit.record(True)
            else:
                valid.append(result)
                self.limit.record(False)
        m.dead_letter_share.set(self.limit.dead_share)
        if self.limit.tripped:
            self.context.stop(
                EXIT_DLQ_LIMIT,
                f"DLQ limit: {self.limit.dead_share:.0%} of the last {self.limit.window} events "
                f"were invalid (limit {self.settings.dlq_limit_ratio:.0%}); stopping without ack",
            )

        steps = []
        if dead:
            steps.append(self._dead_letter(dead))
        if valid:
            steps.append(self._classify_publish_store(valid))
        await asyncio.gather(*steps)
        m.batch_latency.observe(time.perf_counter() - started)

    async def _dead_letter(self, dead: list[tuple[DeadLetter, bytes | None]]) -> None:
        letters: list[Outgoing] = [
            (key, to_json_bytes(record), dead_letter_headers(record)) for record, key in dead
        ]
        await self._retry("dead_letter", lambda: self._publish(self.dlq_topic, letters))
        for record, _ in dead:
            self.metrics.events_dead_lettered.labels(record.reason).inc()

    async def _classify_publish_store(self, valid: list[ValidReview]) -> None:
        m = self.metrics
        texts = [review.clean_text for review in valid]
        started = time.perf_counter()
        terms, predictions = await self._retry("model", lambda: self._classify(texts))
        m.model_latency.observe(time.perf_counter() - started)

        processed_at = datetime.now(UTC)
        version = self.context.model.version
        rows = [
            build_review_row(
                review, term, prediction, model_version=version, processed_at=processed_at
            )
            for review, term, prediction in zip(valid, terms, predictions, strict=True)
        ]
        outgoing: list[Outgoing] = [
            (row["product_id"].encode(), to_json_bytes(build_sentiment_event(row)), None)
            for row in rows
        ]
        await asyncio.gather(
            self._retry("produce", lambda: self._timed_publish(outgoing, valid)),
            self._retry("clickhouse", lambda: self._insert(rows)),
        )
        m.events_processed.inc(len(rows))

    async def _classify(self, texts: list[str]) -> tuple[list[ReviewTerms], list[Any]]:
        """jieba on its thread and one model call on the model thread, side by side: the
        forward pass releases the GIL, so the two overlap."""
        loop = asyncio.get_running_loop()
        context = self.context
        terms, predictions = await asyncio.gather(
            loop.run_in_executor(
                context.keywords_executor,
                lambda: [context.keywords.extract(text) for text in texts],
            ),
            loop.run_in_executor(context.model_executor, context.model.predict_batch, texts),
        )
        if len(predictions) != len(texts):
            raise ValueError(f"model returned {len(predictions)} results for {len(texts)} texts")
        return terms, predictions

    async def _timed_publish(self, outgoing: list[Outgoing], valid: list[ValidReview]) -> None:
        started = time.perf_counter()
        await self._publish(self.output_topic, outgoing)
        self.metrics.produce_latency.observe(time.perf_counter() - started)
        acked = datetime.now(UTC)
        for review in valid:
            self.metrics.end_to_end_latency.observe(
                max(0.0, (acked - review.created_at).total_seconds())
            )

    async def _publish(self, topic: TopicT, messages: Iterable[Outgoing]) -> None:
        """Send all, then wait until the broker acknowledged every one."""
        pending = [
            await topic.send(key=key, value=value, headers=headers, force=True)
            for key, value, headers in messages
        ]
        await asyncio.gather(*pending)

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        inserted = await loop.run_in_executor(
            self.context.clickhouse_executor, self.context.store.write_reviews, rows
        )
        self.metrics.clickhouse_insert_latency.observe(time.perf_counter() - started)
        self.metrics.clickhouse_rows.inc(inserted)

    async def _retry(self, step: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` until it succeeds; back off between tries; after the last failure
        stop the worker hard so the batch is not acked."""
        attempts = self.settings.sink_retry_attempts
        delay = self.settings.sink_retry_backoff_s
        for number in range(1, attempts + 1):
            try:
                return await asyncio.wait_for(attempt(), timeout=self.settings.sink_timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if number == attempts:
                    self.context.stop(
                        EXIT_SINK_DOWN,
                        f"{step} failed {attempts} times, last error {_short(exc)}; "
                        "stopping without acking the batch",
                    )
                log.warning("%s failed (attempt %d/%d): %s", step, number, attempts, _short(exc))
                self.metrics.sink_retries.labels(step).inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")


def _short(exc: BaseException, limit: int = 300) -> str:
    """One line of an exception for logs (ClickHouse errors carry whole stack traces)."""
    text = " ".join(repr(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."
