"""Faust classes the worker's app uses, for what Faust 0.15.3 fixes and we need to set.

- :class:`FetchWaitTransport`: Faust's aiokafka transport whose worker consumer long-polls
  for ``fetch_max_wait_ms`` instead of the 1,500 ms Faust hard-codes. Tansu holds a fetch for
  a share of that wait even when records arrive meanwhile (measured: a record waits 0.38 s at
  the median and up to 0.75 s at 1,500 ms, 20 ms and 50 ms at 100 ms), so the wait is added to
  every review's latency. On Apache Kafka a fetch returns as soon as a record is there, and
  the wait only bounds how often an idle consumer asks. The app gets it through its public
  ``transport`` attribute (Faust has no setting that names the consumer's class).
- :class:`DirectDeliveryConsumer` (the same consumer): Faust's fetcher hands every message
  to the streams through ``wait_first(deliver(message), suspend_flow.wait())``, a race so
  that a rebalance can cut short a delivery blocked on a full stream buffer. That race costs
  four tasks, a wait and three cancellations a message. Here a delivery that completes
  without suspending (room in the buffer, flow not suspended: nearly always) is run
  directly, since nothing could have won a race against it; one that suspends is raced as
  Faust does.
- :class:`NoPauseTableManager`: Faust's table manager pauses 1 s at start before the
  consumer may subscribe (so tables defined late can register). The worker has no tables
  (ClickHouse holds all state), so the pause only delays joining the group; with tables,
  Faust's behaviour is kept. Given to the app through Faust's ``TableManager`` setting.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator
from typing import Any

import aiokafka
from faust.tables import TableManager
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults


class FetchWaitConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Builds Faust's worker consumer, then gives it the transport's fetch wait."""

    def _create_worker_consumer(
        self, transport: faust_aiokafka.Transport
    ) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka keeps the constructor's value here and hands it to its fetcher in start(),
        # which runs after this returns (tests/stream/test_fetch_wait.py checks both).
        consumer._fetch_max_wait_ms = fetch_wait_of(transport)
        return consumer


class FlowSuspension(asyncio.Event):
    """The consumer's ``suspend_flow`` event, whose ``wait()`` a :class:`FlowWait` makes
    recognisable in ``wait_first``."""

    def wait(self) -> FlowWait:  # type: ignore[override]
        return FlowWait(self)


class FlowWait:
    """``suspend_flow.wait()``: awaitable like the event's own wait."""

    __slots__ = ("event",)

    def __init__(self, event: FlowSuspension) -> None:
        self.event = event

    def __await__(self) -> Generator[Any, None, bool]:
        return asyncio.Event.wait(self.event).__await__()


class DirectDeliveryConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose per-message delivery skips the race when nothing
    could win it (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.suspend_flow = FlowSuspension()

    async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
        if len(coros) == 2 and timeout is None and isinstance(coros[1], FlowWait):
            delivery, suspended = coros
            if (
                isinstance(delivery, Coroutine)
                and not suspended.event.is_set()
                and not self._stopped.is_set()
                and not self._crashed.is_set()
            ):
                try:
                    yielded = delivery.send(None)
                except StopIteration as done:
                    # Done before anything else ran: Faust's race has the same winner.
                    return WaitResults([delivery], [done.value], False)
                return await super().wait_first(_go_on(delivery, yielded), suspended)
        return await super().wait_first(*coros, timeout=timeout)


async def _go_on(coroutine: Coroutine, yielded: Any) -> Any:
    """The rest of ``coroutine``, which already ran up to yielding ``yielded``."""
    return await _driven(coroutine, yielded)


@types.coroutine
def _driven(coroutine: Coroutine, yielded: Any) -> Generator[Any, Any, Any]:
    """Pass what ``coroutine`` yields to the task and what the task sends or throws back,
    starting with the ``yielded`` it already gave (a future the task now waits for)."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as error:  # a cancellation, mostly: the coroutine handles it
            try:
                yielded = coroutine.throw(error)
            except StopIteration as done:
                return done.value
        else:
            try:
                yielded = coroutine.send(sent)
            except StopIteration as done:
                return done.value


class FetchWaitConsumer(DirectDeliveryConsumer):
    """Faust's aiokafka consumer on :class:`FetchWaitConsumerThread`."""

    def _new_consumer_thread(self) -> FetchWaitConsumerThread:
        return FetchWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)


class FetchWaitTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport whose worker consumer long-polls ``fetch_max_wait_ms``."""

    Consumer = FetchWaitConsumer

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if fetch_max_wait_ms < 1:
            raise ValueError(f"fetch_max_wait_ms must be at least 1, not {fetch_max_wait_ms}")
        self.fetch_max_wait_ms = fetch_max_wait_ms


def fetch_wait_of(transport: Any) -> int:
    """The transport's fetch wait; Faust's own transports keep Faust's 1,500 ms."""
    return int(getattr(transport, "fetch_max_wait_ms", FAUST_FETCH_MAX_WAIT_MS))


# What faust.transport.drivers.aiokafka passes to AIOKafkaConsumer (0.15.3).
FAUST_FETCH_MAX_WAIT_MS = 1500


class NoPauseTableManager(TableManager):
    """Faust's table manager without its 1 s start-up pause when the app has no tables."""

    async def on_start(self) -> None:
        if len(self):  # tables: keep Faust's pause for late registrations
            await super().on_start()
            return
        # Faust's on_start, less the pause: register the (no) changelog channels, which lets
        # the conductor subscribe, and start the recovery service.
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()
