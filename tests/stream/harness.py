"""Test harness for the worker: feed and read real topics (the worker itself runs through
``stream.local.worker.WorkerProcess``)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from stream.config import KafkaConfig
from stream.kafka import AckedProducer
from stream.local.worker import WorkerProcess, wait_for
from stream.replay import ReplayEvent

__all__ = ["WorkerProcess", "committed_total", "produce", "read_topic", "wait_for"]


def produce(kafka: KafkaConfig, events: Iterable[ReplayEvent]) -> int:
    """Send ``events`` to the input topic; returns how many, once all are acknowledged."""
    messages = [(event.key, event.value, None) for event in events]
    producer = AckedProducer(kafka, timeout_s=60)
    producer.send(kafka.input_topic, messages)
    return len(messages)


def read_topic(bootstrap: str, topic: str, *, idle_s: float = 2.0) -> list[Any]:
    """Every message of ``topic`` from the beginning, until nothing new arrives for ``idle_s``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = metadata.topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    messages = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_s:
            batch = consumer.consume(1000, timeout=0.2)
            for message in batch:
                if message.error() is None:
                    messages.append(message)
            if batch:
                last = time.monotonic()
    finally:
        consumer.close()
    return messages


def committed_total(kafka: KafkaConfig) -> int:
    """Sum of the committed offsets of the worker's group on the input topic."""
    consumer = Consumer({"bootstrap.servers": kafka.kafka_broker, "group.id": kafka.app_id})
    try:
        metadata = consumer.list_topics(kafka.input_topic, timeout=10)
        partitions = [
            TopicPartition(kafka.input_topic, p)
            for p in metadata.topics[kafka.input_topic].partitions
        ]
        committed = consumer.committed(partitions, timeout=10)
        return sum(max(tp.offset, 0) for tp in committed)
    finally:
        consumer.close()
