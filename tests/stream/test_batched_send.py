"""``stream.kafka.send_and_await`` sends through the app's producer in record batches: every
record arrives once, on the partition Faust's per-record send picks (aiokafka's murmur2 of the
key), in send order within its partition, with its key, value and headers, also when a
partition's records fill several batches."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from aiokafka.partitioner import murmur2

from stream.app import create_app
from stream.config import WorkerConfig
from stream.kafka import Outgoing, create_topics, raw_topic, send_and_await

PARTITIONS = 4


def records() -> list[Outgoing]:
    """400 keyed records of ~300 bytes (several 16 KB batches per partition), some with
    headers, and two without a key (aiokafka picks any partition for those)."""
    keyed: list[Outgoing] = [
        (
            f"product-{i % 7}".encode(),
            f"{i:04d}:".encode() + b"x" * 300,
            [("n", str(i).encode()), ("empty", b"")] if i % 2 else None,
        )
        for i in range(400)
    ]
    return [*keyed, (None, b"0400:no key", None), (None, b"0401:no key", None)]


def read_all(bootstrap: str, topic: str, count: int) -> list[tuple[int, int, object]]:
    """(partition, offset, message) of ``count`` messages of ``topic``, from the start."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"batched-send-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    seen: list[tuple[int, int, object]] = []
    try:
        for _ in range(200):
            if len(seen) >= count:
                break
            for message in consumer.consume(500, timeout=0.5):
                assert message.error() is None, message.error()
                seen.append((message.partition(), message.offset(), message))
    finally:
        consumer.close()
    return seen


@pytest.mark.broker
def test_records_arrive_once_on_faust_partitions_in_order(
    make_config: Callable[..., WorkerConfig],
) -> None:
    config = make_config(topic_partitions=PARTITIONS)
    topic = f"batched-send.{uuid.uuid4().hex[:8]}"
    create_topics(config.kafka.kafka_broker, [topic], PARTITIONS)
    app = create_app(config.kafka, config.batch, config.web)
    sent = records()

    async def send() -> None:
        await app.producer.start()
        try:
            await send_and_await(raw_topic(app, topic), sent)
        finally:
            await app.producer.stop()

    asyncio.run(send())
    received = read_all(config.kafka.kafka_broker, topic, len(sent))
    assert len(received) == len(sent)  # once each (values are unique)
    by_value = {
        message.value(): (partition, offset, message) for partition, offset, message in received
    }
    assert set(by_value) == {value for _, value, _ in sent}
    last_offset: dict[int, int] = {}
    for key, value, headers in sent:
        partition, offset, message = by_value[value]
        assert message.key() == key
        assert (message.headers() or None) == (headers or None)
        if key is not None:  # aiokafka's DefaultPartitioner, as Faust's topic.send uses it
            assert partition == (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
        assert offset > last_offset.get(partition, -1)  # send order within a partition
        last_offset[partition] = offset
    assert len({partition for partition, _, _ in received}) > 1
