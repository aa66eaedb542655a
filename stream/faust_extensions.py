"""Two Faust classes the worker's app uses, for what Faust 0.15.3 fixes and we need to set.

- :class:`FetchWaitTransport`: Faust's aiokafka transport whose worker consumer long-polls
  for ``fetch_max_wait_ms`` instead of the 1,500 ms Faust hard-codes. Tansu holds a fetch for
  a share of that wait even when records arrive meanwhile (measured: a record waits 0.38 s at
  the median and up to 0.75 s at 1,500 ms, 20 ms and 50 ms at 100 ms), so the wait is added to
  every review's latency. On Apache Kafka a fetch returns as soon as a record is there, and
  the wait only bounds how often an idle consumer asks. The app gets it through its public
  ``transport`` attribute (Faust has no setting that names the consumer's class).
- :class:`NoPauseTableManager`: Faust's table manager pauses 1 s at start before the
  consumer may subscribe (so tables defined late can register). The worker has no tables
  (ClickHouse holds all state), so the pause only delays joining the group; with tables,
  Faust's behaviour is kept. Given to the app through Faust's ``TableManager`` setting.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.tables import TableManager
from faust.transport.drivers import aiokafka as faust_aiokafka


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


class FetchWaitConsumer(faust_aiokafka.Consumer):
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
