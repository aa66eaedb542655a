"""The batch chain: the order of the steps and the one place that decides "safe to ack"."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from stream.events import DeadLetter
from stream.metrics import Metrics
from stream.pipeline.exits import (
    EXIT_BATCH_ERROR,
    EXIT_DLQ_LIMIT,
    EXIT_INTERRUPTED,
    EXIT_SINK_DOWN,
    Stop,
)
from stream.pipeline.retry import SinkDown
from stream.pipeline.steps import DlqLimitExceeded, Incoming, Validate
from stream.rows import ClassifiedReview
from stream.validation import ValidReview

log = logging.getLogger(__name__)


class BatchChain:
    """validate, then dead-letter beside classify, then publish beside store.

    ``validate`` is :class:`~stream.pipeline.steps.Validate`; the other steps are
    ``PublishDeadLetters``, ``Classify``, ``PublishSentiments`` and ``StoreRows``, each wrapped
    in :class:`~stream.pipeline.retry.Retrying` by the worker (``stream.agents``).
    """

    def __init__(
        self,
        *,
        validate: Validate,
        dead_letter: Callable[[Sequence[tuple[DeadLetter, bytes | None]]], Awaitable[None]],
        classify: Callable[[Sequence[ValidReview]], Awaitable[list[ClassifiedReview]]],
        publish: Callable[[Sequence[ClassifiedReview]], Awaitable[None]],
        store: Callable[[Sequence[ClassifiedReview]], Awaitable[None]],
        metrics: Metrics,
        stop: Stop,
    ) -> None:
        self.validate = validate
        self.dead_letter = dead_letter
        self.classify = classify
        self.publish = publish
        self.store = store
        self.metrics = metrics
        self.stop = stop

    async def process(self, messages: Sequence[Incoming]) -> None:
        """Make every output of ``messages`` durable, then return. Returning is the only
        signal that the batch may be acked: its dead letters and sentiment events were
        acknowledged by the broker and its rows were inserted.

        It never raises. When that cannot be done (a sink stays down, the dead-letter limit
        trips, a bug, a cancellation mid-batch), it calls ``stop``, which leaves the process
        without acking, so the batch is read again by the next worker."""
        try:
            await self._run(messages)
        except asyncio.CancelledError:
            self.stop(
                EXIT_INTERRUPTED,
                f"cancelled during a batch of {len(messages)}; it is not acked and will be re-read",
            )
        except DlqLimitExceeded as exc:
            self.stop(EXIT_DLQ_LIMIT, f"{exc}; stopping without ack")
        except SinkDown as exc:
            self.stop(EXIT_SINK_DOWN, f"{exc}; stopping without acking the batch")
        except Exception as exc:
            log.exception("batch of %d failed", len(messages))
            self.stop(
                EXIT_BATCH_ERROR, f"unexpected error in a batch, stopping without ack: {exc!r}"
            )

    async def _run(self, messages: Sequence[Incoming]) -> None:
        started = time.perf_counter()
        self.metrics.events_consumed.inc(len(messages))
        self.metrics.batch_size.observe(len(messages))
        batch = self.validate(messages)
        branches: list[Awaitable[None]] = []
        if batch.dead:
            branches.append(self.dead_letter(batch.dead))
        if batch.valid:
            branches.append(self._classify_and_sink(batch.valid))
        await asyncio.gather(*branches)
        self.metrics.batch_latency.observe(time.perf_counter() - started)

    async def _classify_and_sink(self, valid: Sequence[ValidReview]) -> None:
        classified = await self.classify(valid)
        await asyncio.gather(self.publish(classified), self.store(classified))
        self.metrics.events_processed.inc(len(classified))
