"""The batch chain: the order of the steps, the pipeline of batches, and the one place that
decides "safe to ack"."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NoReturn

from stream.events import DeadLetter
from stream.metrics import Metrics
from stream.pipeline.exits import (
    EXIT_BATCH_ERROR,
    EXIT_DLQ_LIMIT,
    EXIT_INTERRUPTED,
    EXIT_SINK_DOWN,
    Stop,
)
from stream.pipeline.inflight import InflightWindow
from stream.pipeline.poison import PoisonGuard, Triage, describe_positions
from stream.pipeline.retry import SinkDown
from stream.pipeline.steps import DlqLimitExceeded, Incoming, Validate
from stream.rows import ClassifiedReview
from stream.validation import ValidReview

log = logging.getLogger(__name__)

IN_PROCESS_STEP = "model"
"""The retried step that runs in this worker (on its model thread, or in its model and keywords
child processes): when it fails on every attempt, the input in hand is the likely cause (the
model was canaried when loaded), so it counts as a crash for the poison guard; a sink that
stays down (ClickHouse, the broker) does not."""

Ack = Callable[[], Awaitable[None]]
"""Acks a batch's input messages (the agent's Faust acks); awaited once, in take order."""


@dataclass(frozen=True)
class Validated:
    """A batch split by validation: its dead letters, and the reviews to classify."""

    dead: list[tuple[DeadLetter, bytes | None]]
    valid: list[ValidReview]
    started: float  # perf_counter() when the batch was taken


@dataclass(frozen=True)
class Outputs:
    """What a batch's front produced and its sinks make durable."""

    dead: list[tuple[DeadLetter, bytes | None]]
    classified: list[ClassifiedReview]
    started: float  # perf_counter() when the batch was taken


class BatchChain:
    """validate (the front), then classify, dead-letter, publish and store (the flight).

    Batches are pipelined: :meth:`submit` validates a batch on the caller's task, hands its
    classification and sinks to the in-flight window (``window``, at most
    ``max-inflight-batches``) and returns once there is room for the next batch. So batch N+1
    is taken and validated while batch N is classified, and classified while batch N's
    outputs are written: the model thread finds the next batch waiting. Classification keeps
    take order (one model thread, one keywords executor, both first in first out). The window
    acks batches strictly in take order, each only once its own outputs and those of every
    batch before it are durable.

    ``validate`` is :class:`~stream.pipeline.steps.Validate`; the other steps are
    ``PublishDeadLetters``, ``Classify``, ``PublishSentiments`` and ``StoreRows``, each wrapped
    in :class:`~stream.pipeline.retry.Retrying` by the worker (``stream.agents``). With
    ``poison`` (:class:`~stream.pipeline.poison.PoisonGuard`), the in-flight marker names the
    messages of every batch in flight; messages in hand at earlier crashes go alone, with
    nothing else in flight, and those over the crash limit are dead-lettered as ``poison``.
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
        window: InflightWindow | None = None,
    ) -> None:
        self.poison = poison
        self.window = window if window is not None else InflightWindow(1)
        self._in_hand: Sequence[Incoming] = ()
        self._held: dict[int, Sequence[Incoming]] = {}  # batch number -> its positions
        self._taken = 0
        self.validate = validate
        self.dead_letter = dead_letter
        self.classify = classify
        self.publish = publish
        self.store = store
        self.metrics = metrics
        self.stop = stop
        self._stopped = False

    @property
    def in_flight(self) -> int:
        """Batches taken and not acked yet."""
        return len(self.window)

    async def submit(self, messages: Sequence[Incoming], ack: Ack | None = None) -> None:
        """Take ``messages`` into the pipeline: validate and classify them, start their sinks,
        and return once the window has room for another batch (backpressure: while the sinks
        lag, the caller takes nothing more).

        ``ack`` is awaited once this batch's dead letters and sentiment events were
        acknowledged by the broker, its rows were inserted, and every batch submitted before
        it was acked: that is the only signal that it may be acked. It never raises in the
        worker. When a batch cannot be made durable (a sink stays down, the dead-letter limit
        trips, a bug, a cancellation), it calls ``stop``, which leaves the process without
        acking that batch or any batch after it, so they are read again by the next worker."""
        self.window.raise_failure()
        self._taken += 1
        key = self._taken
        self._in_hand = messages
        try:
            await self._take(key, messages, ack)
        except asyncio.CancelledError:
            where = self._where(messages)
            self._release()
            self._stop(
                EXIT_INTERRUPTED,
                f"cancelled during a batch of {len(messages)} ({where}); it is not acked and "
                "will be re-read" + self._also_in_flight(),
            )
        except DlqLimitExceeded as exc:
            where = self._where(messages)
            self._release()
            self._stop(EXIT_DLQ_LIMIT, f"{exc}; stopping without ack ({where})")
        except SinkDown as exc:
            where = self._where(messages)
            if exc.step == IN_PROCESS_STEP:
                self._blame(self._in_hand)
            else:  # a sink outside is down: not the input's fault
                self._release()
            self._stop(EXIT_SINK_DOWN, f"{exc}; stopping without acking the batch ({where})")
        except Exception as exc:
            if exc is self.window.failure:  # an earlier batch's stop, surfacing here (tests)
                raise
            where = self._where(messages)
            # The in-flight marker stays: the next start counts a crash for what was in hand.
            self._blame(self._in_hand)
            log.exception("batch of %d failed (%s)", len(messages), where)
            self._stop(
                EXIT_BATCH_ERROR,
                f"unexpected error in a batch of {len(messages)} ({where}), stopping without "
                f"ack: {exc!r}",
            )
        waiting = time.perf_counter()
        try:
            await self.window.wait_for_room()
        except asyncio.CancelledError:
            self.interrupted()
            raise
        self.metrics.backpressure_seconds.inc(time.perf_counter() - waiting)

    async def process(self, messages: Sequence[Incoming]) -> None:
        """One batch start to finish: returns only once its outputs (and those of every batch
        submitted before it) are durable; otherwise ``stop`` is called."""
        await self.submit(messages)
        await self.drain()

    async def drain(self) -> None:
        """Wait until every batch in flight is durable and acked."""
        try:
            await self.window.drain()
        except asyncio.CancelledError:
            self.interrupted()
            raise

    def interrupted(self) -> None:
        """The caller was cancelled between batches: with batches in flight, stop without
        acking them (as a cancellation mid-batch does); with none, nothing to do."""
        if self.in_flight:
            names = "; ".join(self.window.names())
            self._release()
            self._stop(
                EXIT_INTERRUPTED,
                f"cancelled with {self.in_flight} batch(es) in flight ({names}); they are not "
                "acked and will be re-read",
            )

    async def _take(self, key: int, messages: Sequence[Incoming], ack: Ack | None) -> None:
        triage = Triage(rest=list(messages))
        if self.poison is not None:
            triage = await self.poison.triage(messages)
        settle = partial(self._settle, key, ack)
        if triage.suspect_parts:
            await self._alone(key, messages, triage)
            self.window.add(describe_positions(messages), _nothing(), settle)
            return
        self._hold(key, messages)
        validated = self._validated(messages, triage.poison)
        self.window.add(describe_positions(messages), self._durable(messages, validated), settle)

    async def _alone(self, key: int, messages: Sequence[Incoming], triage: Triage) -> None:
        """Suspects go part by part (alone or in small groups, see ``triage_by_crashes``)
        with nothing else in flight, so that a crash now implicates only the part in hand;
        the rest of the batch follows, then it is acked."""
        await self.window.drain()
        for part in triage.parts:
            self._in_hand = part
            self._hold(key, part)
            await self._sinks(await self._front(part, triage.poison))  # fails into submit

    async def _front(
        self, messages: Sequence[Incoming], poison: dict[tuple[str, int, int], int]
    ) -> Outputs:
        """Validate and classify (the model's and jieba's threads); nothing is sent yet."""
        return await self._classified(self._validated(messages, poison))

    def _validated(
        self, messages: Sequence[Incoming], poison: dict[tuple[str, int, int], int]
    ) -> Validated:
        started = time.perf_counter()
        self.metrics.events_consumed.inc(len(messages))
        self.metrics.batch_size.observe(len(messages))
        batch = self.validate(messages, poison)
        return Validated(batch.dead, batch.valid, started)

    async def _classified(self, validated: Validated) -> Outputs:
        classified = await self.classify(validated.valid) if validated.valid else []
        return Outputs(validated.dead, classified, validated.started)

    async def _durable(self, messages: Sequence[Incoming], validated: Validated) -> None:
        """Classify the batch and make its outputs durable (dead letters, sentiment events
        and rows, side by side), or stop. Runs as the batch's flight, while later batches are
        taken. A model that fails on every attempt blames the batch's messages, as an error
        in this process does; a sink outside that stays down blames nothing."""
        try:
            await self._sinks(await self._classified(validated))
        except asyncio.CancelledError:
            where = describe_positions(messages)
            self._release()
            self._stop(
                EXIT_INTERRUPTED,
                f"cancelled while classifying or writing a batch of {len(messages)} ({where}); "
                "it is not acked and will be re-read",
            )
        except SinkDown as exc:
            where = describe_positions(messages)
            if exc.step == IN_PROCESS_STEP:
                self._blame(messages)
            else:  # a sink outside the process: not the input's fault
                self._release()
            self._stop(EXIT_SINK_DOWN, f"{exc}; stopping without acking the batch ({where})")
        except Exception as exc:
            where = describe_positions(messages)
            self._blame(messages)
            log.exception("classifying or writing a batch of %d failed (%s)", len(messages), where)
            self._stop(
                EXIT_BATCH_ERROR,
                f"unexpected error classifying or writing a batch of {len(messages)} ({where}), "
                f"stopping without ack: {exc!r}",
            )

    async def _sinks(self, outputs: Outputs) -> None:
        branches: list[Awaitable[None]] = []
        if outputs.dead:
            branches.append(self.dead_letter(outputs.dead))
        if outputs.classified:
            branches += [self.publish(outputs.classified), self.store(outputs.classified)]
        await asyncio.gather(*branches)
        self.metrics.events_processed.inc(len(outputs.classified))
        self.metrics.batch_latency.observe(time.perf_counter() - outputs.started)

    async def _settle(self, key: int, ack: Ack | None) -> None:
        """The batch and every batch before it are durable: forget its positions, ack it."""
        if self._stopped:
            return
        try:
            self._unhold(key)
            if ack is not None:
                await ack()
        except asyncio.CancelledError:
            self._release()
            self._stop(EXIT_INTERRUPTED, "cancelled while acking a durable batch; re-read")
        except Exception as exc:
            log.exception("acking a durable batch failed")
            self._stop(EXIT_BATCH_ERROR, f"acking a durable batch failed, stopping: {exc!r}")

    def _stop(self, code: int, message: str) -> NoReturn:
        """``stop`` (which leaves the process); nothing is acked after it, even where a test's
        ``stop`` returns or raises instead."""
        self._stopped = True
        self.stop(code, message)

    def _where(self, messages: Sequence[Incoming]) -> str:
        """The positions in hand when it failed (and of the whole batch, if it was split)."""
        part, whole = describe_positions(self._in_hand), describe_positions(messages)
        return part if part == whole else f"{part}, of the batch {whole}"

    def _also_in_flight(self) -> str:
        names = self.window.names()
        if not names:
            return ""
        return f"; so are the {len(names)} batch(es) in flight ({'; '.join(names)})"

    def _hold(self, key: int, messages: Sequence[Incoming]) -> None:
        """``messages`` are in hand from now on (before any of their work starts)."""
        if self.poison is not None:
            self._held[key] = messages
            self._mark()

    def _unhold(self, key: int) -> None:
        if self.poison is not None:
            self._held.pop(key, None)
            self._mark()

    def _mark(self) -> None:
        """The in-flight marker names every message of every batch in flight: if the process
        dies, any of them may be the cause, and each goes alone next time."""
        assert self.poison is not None
        held = [message for part in self._held.values() for message in part]
        if held:
            self.poison.begin(held)
        else:
            self.poison.release()

    def _blame(self, messages: Sequence[Incoming]) -> None:
        """An error in this process with ``messages`` in hand: the marker names only them.
        After a stop nothing is blamed any more: the first failure's marker is the one the
        next start reads (in the worker the stop has ended the process; in tests it has not,
        and later flights fail behind it)."""
        if self.poison is not None and not self._stopped:
            try:
                self.poison.begin(messages)
            except OSError:
                log.exception("could not write the in-flight marker")

    def _release(self) -> None:
        """The stop is not the messages' fault: no crash is counted for any of them (unless
        an earlier stop blamed some: as in :meth:`_blame`, the first stop decides)."""
        if self.poison is not None and not self._stopped:
            self._held.clear()
            try:
                self.poison.release()
            except OSError:
                log.exception("could not clear the in-flight marker")


async def _nothing() -> None:
    """The flight of a batch whose outputs are durable already (its suspects went first)."""
