"""Producer linger and compression: the settings reach the worker's Faust producer, and gzip
(the codec aiokafka has without extra packages) works against Tansu end to end."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest

from stream.app import create_app
from stream.config import WorkerConfig
from stream.kafka import create_topics, faust_producer_settings


def test_settings_reach_the_faust_app(make_config: Callable[..., WorkerConfig]) -> None:
    config = make_config(producer_linger_ms=7.5, producer_compression="gzip")
    assert faust_producer_settings(config.kafka) == {
        "producer_linger": 0.0075,
        "producer_compression_type": "gzip",
    }
    app = create_app(config.kafka, config.batch, config.web)
    assert app.conf.producer_compression_type == "gzip"
    assert app.conf.producer_linger == pytest.approx(0.0075)
    default = make_config()
    assert faust_producer_settings(default.kafka)["producer_compression_type"] is None


@pytest.mark.broker
def test_gzip_batches_round_trip_through_tansu(tansu: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = f"gzip.{uuid.uuid4().hex[:8]}"
    create_topics(tansu, [topic], 2)
    values = [f'{{"review_id":"r-{i}","text":"质量很好 {i}"}}'.encode() for i in range(300)]

    async def round_trip() -> list[bytes]:
        producer = AIOKafkaProducer(
            bootstrap_servers=tansu, compression_type="gzip", linger_ms=5, acks="all"
        )
        await producer.start()
        try:
            sent = [await producer.send(topic, value, key=b"p-1") for value in values]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=tansu, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        received: list[bytes] = []
        try:
            while len(received) < len(values):
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 20)
                for records in batches.values():
                    received += [record.value for record in records]
        finally:
            await consumer.stop()
        return received

    assert asyncio.run(round_trip()) == values  # one key: one partition, in order
