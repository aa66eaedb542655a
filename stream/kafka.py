"""The Kafka seam: topics, producer settings, raw Faust topics, sends that await their acks,
and broker checks. Every other module reaches the broker through here.

Blocking calls (``create_topics``, ``broker_reachable``, :class:`AckedProducer`) belong on an
executor when called from the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from stream.config import KafkaConfig

if TYPE_CHECKING:
    import faust
    from faust.types import TopicT

# (key, value, headers) of one outgoing record; keys and values are bytes we encoded ourselves.
Outgoing = tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]


class DeliveryError(RuntimeError):
    """The broker did not acknowledge every record of a send."""


def producer_config(kafka: KafkaConfig, *, max_message_bytes: int = 1_048_576) -> dict[str, Any]:
    """confluent-kafka settings for every producer outside Faust: idempotent, acks from all
    in-sync replicas, and murmur2 keys so a key lands on the partition Faust would pick."""
    return {
        "bootstrap.servers": kafka.kafka_broker,
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.max.bytes": max(1_048_576, max_message_bytes),
    }


def create_topics(
    bootstrap: str, names: Iterable[str], partitions: int, timeout_s: float = 10.0
) -> None:
    """Create topics with ``partitions`` partitions; topics that already exist are left
    alone. Blocking."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient, NewTopic

    wanted = [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
    if not wanted:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except Exception as exc:
            error = exc.args[0] if exc.args else None
            if getattr(error, "code", lambda: None)() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"could not create topic {name!r}: {exc}") from exc


def ensure_topics(kafka: KafkaConfig, names: Iterable[str] | None = None) -> None:
    """Create ``names`` (default: every topic of ``kafka``) with the configured partitions."""
    create_topics(
        kafka.kafka_broker, kafka.topics if names is None else names, kafka.topic_partitions
    )


def broker_reachable(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True when the broker answers a metadata request; raises otherwise. Blocking."""
    from confluent_kafka.admin import AdminClient

    AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout_s)
    return True


def raw_topic(app: faust.App, name: str) -> TopicT:
    """A Faust topic of raw bytes: we (de)serialise ourselves, so bad bytes reach validation."""
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


async def send_and_await(topic: TopicT, messages: Iterable[Outgoing]) -> None:
    """Send every record through Faust's producer, then wait until the broker acknowledged
    each one (raises if any delivery failed)."""
    pending = [
        await topic.send(key=key, value=value, headers=headers, force=True)
        for key, value, headers in messages
    ]
    await asyncio.gather(*pending)


class AckedProducer:
    """A confluent-kafka producer whose ``send`` returns only once the broker acknowledged
    every record, for senders outside the Faust worker. Blocking."""

    def __init__(
        self, kafka: KafkaConfig, *, timeout_s: float = 30.0, max_message_bytes: int = 1_048_576
    ) -> None:
        from confluent_kafka import Producer

        self.timeout_s = timeout_s
        self._producer = Producer(producer_config(kafka, max_message_bytes=max_message_bytes))

    def send(self, topic: str, messages: Sequence[Outgoing]) -> None:
        """Produce ``messages`` to ``topic`` and flush; raise :class:`DeliveryError` unless the
        broker acknowledged all of them. Undelivered records are purged, not retried later."""
        errors: list[str] = []

        def on_delivery(error: Any, _message: Any) -> None:
            if error is not None:
                errors.append(str(error))

        for key, value, headers in messages:
            while True:
                try:
                    self._producer.produce(
                        topic, value, key, headers=headers, on_delivery=on_delivery
                    )
                    break
                except BufferError:
                    self._producer.poll(0.05)
            self._producer.poll(0)
        remaining = self._producer.flush(self.timeout_s)
        if remaining:
            self._producer.purge()
            self._producer.flush(0)
            raise DeliveryError(f"{remaining} record(s) not acknowledged in {self.timeout_s}s")
        if errors:
            raise DeliveryError(f"delivery failed: {errors[0]}")

    def close(self) -> None:
        self._producer.flush(self.timeout_s)
