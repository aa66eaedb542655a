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
from stream.pipeline.poison import PoisonGuard, describe_positions
from stream.pipeline.retry import SinkDown
from stream.pipeline.steps import DlqLimitExceeded, Incoming, Validate
from stream.rows import ClassifiedReview
from stream.validation import ValidReview

log = logging.getLogger(__name__)

IN_PROCESS_STEP = "model"
"""The retried step that runs in this process: when it fails on every attempt, the input in
hand is the likely cause (the model was canaried when loaded), so it counts as a crash for
the poison guard; a sink that stays down (ClickHouse, the broker) does not."""


class BatchChain:
    """validate, then dead-letter beside classify, then publish beside store.

    ``validate`` is :class:`~stream.pipeline.steps.Validate`; the other steps are
    ``PublishDeadLetters``, ``Classify``, ``PublishSentiments`` and ``StoreRows``, each wrapped
    in :class:`~stream.pipeline.retry.Retrying` by the worker (``stream.agents``). With
    ``poison`` (:class:`~stream.pipeline.poison.PoisonGuard`), messages in hand at earlier
    crashes go alone, and those over the crash limit are dead-lettered as ``poison``.
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
        poison: PoisonGuard | None = None,
    ) -> None:
        self.poison = poison
        self._in_hand: Sequence[Incoming] = ()
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
        self._in_hand = messages
        try:
            await self._guarded(messages)
        except asyncio.CancelledError:
            where = self._where(messages)
            self._release()
            self.stop(
                EXIT_INTERRUPTED,
                f"cancelled during a batch of {len(messages)} ({where}); it is not acked and "
                "will be re-read",
            )
        except DlqLimitExceeded as exc:
            where = self._where(messages)
            self._release()
            self.stop(EXIT_DLQ_LIMIT, f"{exc}; stopping without ack ({where})")
        except SinkDown as exc:
            where = self._where(messages)
            if exc.step != IN_PROCESS_STEP:  # a sink outside is down: not the input's fault
                self._release()
            self.stop(EXIT_SINK_DOWN, f"{exc}; stopping without acking the batch ({where})")
        except Exception as exc:
            where = self._where(messages)
            # The in-flight marker stays: the next start counts a crash for what was in hand.
            log.exception("batch of %d failed (%s)", len(messages), where)
            self.stop(
                EXIT_BATCH_ERROR,
                f"unexpected error in a batch of {len(messages)} ({where}), stopping without "
                f"ack: {exc!r}",
            )

    def _where(self, messages: Sequence[Incoming]) -> str:
        """The positions in hand when it failed (and of the whole batch, if it was split)."""
        part = describe_positions(self._in_hand)
        whole = describe_positions(messages)
        return part if part == whole else f"{part}, of the batch {whole}"

    async def _guarded(self, messages: Sequence[Incoming]) -> None:
        if self.poison is None:
            await self._run(messages)
            return
        triage = await self.poison.triage(messages)
        for part in triage.parts:
            self._in_hand = part
            self.poison.begin(part)
            await self._run(part, triage.poison)
        self.poison.release()

    def _release(self) -> None:
        """The stop is not the messages' fault: no crash is counted for them."""
        if self.poison is not None:
            try:
                self.poison.release()
            except OSError:
                log.exception("could not clear the in-flight marker")

    async def _run(
        self, messages: Sequence[Incoming], poison: dict[tuple[str, int, int], int] | None = None
    ) -> None:
        started = time.perf_counter()
        self.metrics.events_consumed.inc(len(messages))
        self.metrics.batch_size.observe(len(messages))
        batch = self.validate(messages, poison)
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
