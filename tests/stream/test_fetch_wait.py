"""consumer-fetch-max-wait-ms reaches the worker's aiokafka consumer (Faust hard-codes
1,500 ms), and a consumer built that way still joins its group and consumes from Tansu; the
app also skips Faust's 1 s table-manager pause (stream.faust_extensions)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import faust
import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka

from stream.app import create_app
from stream.config import WorkerConfig
from stream.faust_extensions import (
    FAUST_FETCH_MAX_WAIT_MS,
    FetchWaitTransport,
    NoPauseTableManager,
)
from stream.kafka import AckedProducer, create_topics


def worker_consumer(app: faust.App):
    """The aiokafka consumer Faust's consumer thread builds for ``app`` (not started)."""
    return app.consumer._thread._create_worker_consumer(app.transport)


def test_the_setting_reaches_the_aiokafka_consumer(
    make_config: Callable[..., WorkerConfig],
) -> None:
    config = make_config(consumer_fetch_max_wait_ms=40)
    app = create_app(config.kafka, config.batch, config.web)
    assert isinstance(app.transport, FetchWaitTransport)
    assert isinstance(app.tables, NoPauseTableManager)

    async def build() -> tuple[int, int]:
        consumer = worker_consumer(app)
        # What Faust's own thread gives it: the constant this module replaces.
        plain = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer(
            app.consumer._thread, app.transport
        )
        return consumer._fetch_max_wait_ms, plain._fetch_max_wait_ms

    assert asyncio.run(build()) == (40, FAUST_FETCH_MAX_WAIT_MS)


def test_the_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="consumer_fetch_max_wait_ms"):
        WorkerConfig.resolve(consumer_fetch_max_wait_ms=0)


@pytest.mark.broker
def test_the_worker_consumer_joins_and_consumes_with_its_wait(
    make_config: Callable[..., WorkerConfig],
) -> None:
    config = make_config(consumer_fetch_max_wait_ms=60, topic_partitions=2)
    topic = f"fetch-wait.{uuid.uuid4().hex[:8]}"
    create_topics(config.kafka.kafka_broker, [topic], 2)
    values = [f"review-{i}".encode() for i in range(20)]
    producer = AckedProducer(config.kafka)
    producer.send(topic, [(f"p-{i % 3}".encode(), value, None) for i, value in enumerate(values)])
    producer.close()
    app = create_app(config.kafka, config.batch, config.web)

    async def consume() -> tuple[int, list[bytes]]:
        consumer = worker_consumer(app)
        consumer.subscribe([topic])
        await consumer.start()
        received: list[bytes] = []
        try:
            while len(received) < len(values):
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 30)
                received += [record.value for records in batches.values() for record in records]
            return consumer._fetcher._fetch_max_wait_ms, received
        finally:
            await consumer.stop()

    wait_ms, received = asyncio.run(consume())
    assert wait_ms == 60  # the running fetcher's long-poll
    assert sorted(received) == sorted(values)
