"""Batches in flight: taken, and not yet acked because their outputs are not durable yet.

The agent takes batch N+1 while batch N's sinks (produce, ClickHouse insert) complete, so
several batches can be between take and ack. This window holds them, at most ``limit`` at
once, and acks them strictly in the order they were taken: a batch is acked only after its
own outputs are durable **and** every batch taken before it was acked. Faust commits the
highest contiguous acked offset per partition, so acks in take order keep that offset a
safe one (faust-streaming #312, #606: it commits the wrong offset when acks have gaps).

A flight that fails (its sinks gave up and the stop did not end the process, as in tests)
is never acked, and neither is any flight after it: each flight waits for the one before
and fails with it. The window then refuses new work by raising the failure.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any


@dataclass
class Flight:
    """One batch between take and ack."""

    name: str
    task: asyncio.Task[None]


class InflightWindow:
    """At most ``limit`` batches in flight, acked in the order they were added."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._flights: deque[Flight] = deque()
        self._failure: BaseException | None = None
        self.high_water = 0  # the most batches in flight at once, for tests and logs

    def __len__(self) -> int:
        self._prune()
        return len(self._flights)

    @property
    def full(self) -> bool:
        return len(self) >= self.limit

    def names(self) -> list[str]:
        """The batches in flight, oldest first (for messages)."""
        self._prune()
        return [flight.name for flight in self._flights]

    def add(
        self,
        name: str,
        durable: Coroutine[Any, Any, None],
        ack: Callable[[], Awaitable[None]],
    ) -> None:
        """Start a flight: a task awaits ``durable`` (the batch's outputs), then the flight
        before it, then ``ack``. The caller waits for room first (:meth:`wait_for_room`)."""
        if self._failure is not None:
            durable.close()
            raise self._failure
        previous = self._flights[-1].task if self._flights else None
        task = asyncio.ensure_future(self._fly(durable, previous, ack))
        task.add_done_callback(self._landed)
        self._flights.append(Flight(name, task))
        self.high_water = max(self.high_water, len(self._flights))

    async def wait_for_room(self) -> None:
        """Return once fewer than ``limit`` batches are in flight: the backpressure that keeps
        the agent from taking more while the sinks lag. Raises a flight's failure."""
        while True:
            self._prune()
            self.raise_failure()
            if len(self._flights) < self.limit:
                return
            await asyncio.wait([self._flights[0].task])

    async def drain(self) -> None:
        """Return once every flight landed (acked); raises a flight's failure."""
        while True:
            self._prune()
            self.raise_failure()
            if not self._flights:
                return
            await asyncio.wait([self._flights[-1].task])

    @property
    def failure(self) -> BaseException | None:
        """What the first flight that failed raised (None while all is well)."""
        return self._failure

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    @staticmethod
    async def _fly(
        durable: Awaitable[None],
        previous: asyncio.Task[None] | None,
        ack: Callable[[], Awaitable[None]],
    ) -> None:
        await durable
        if previous is not None:
            # A previous flight that failed raises here: this one is not acked either.
            await asyncio.shield(previous)
        await ack()

    def _landed(self, task: asyncio.Task[None]) -> None:
        """Note a failure at once (and retrieve it, so asyncio does not log it as lost)."""
        if task.cancelled():
            failure: BaseException | None = asyncio.CancelledError()
        else:
            failure = task.exception()
        if failure is not None and self._failure is None:
            self._failure = failure

    def _prune(self) -> None:
        """Forget landed flights from the front (they land in order, or the window failed)."""
        while self._flights and self._flights[0].task.done():
            self._flights.popleft()
        if self._failure is not None:
            while self._flights and self._flights[-1].task.done():
                self._flights.pop()
