"""The Kafka seam: topics, producer settings, raw Faust topics, sends that await their acks,
and broker checks. Every other module reaches the broker through here.

Blocking calls (``create_topics``, ``broker_reachable``, :class:`AckedProducer`) belong on an
executor when called from the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


def faust_producer_settings(kafka: KafkaConfig) -> dict[str, Any]:
    """The worker's (Faust's aiokafka) producer settings that ``KafkaConfig`` tunes: linger
    and compression (gzip is the codec aiokafka has without extra packages)."""
    compression = None if kafka.producer_compression == "none" else kafka.producer_compression
    return {
        "producer_linger": kafka.producer_linger_ms / 1000.0,
        "producer_compression_type": compression,
    }


def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int,
    timeout_s: float = 10.0,
    *,
    replication_factor: int = 1,
) -> None:
    """Create topics with ``partitions`` partitions and ``replication_factor`` replicas;
    topics that already exist are left alone. Blocking."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient, NewTopic

    wanted = [
        NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)
        for name in names
    ]
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
    """Create ``names`` (default: every topic of ``kafka``) with the configured partitions
    and replication factor."""
    create_topics(
        kafka.kafka_broker,
        kafka.topics if names is None else names,
        kafka.topic_partitions,
        replication_factor=kafka.topic_replication_factor,
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
    """Send every record through the app's producer, then wait until the broker acknowledged
    each one (raises if any delivery failed).

    The records go into aiokafka record batches, one per partition (more when one fills), on
    the partition Faust's ``topic.send`` would pick (``Producer.key_partition``: aiokafka's
    partitioner over the key). Partitions, keys, values, headers and the order within a
    partition are those of one ``topic.send`` per record; what goes is one future per batch
    instead of Faust's future, callbacks and sensor calls per record (about 25 µs a record
    on the event loop). Each partition's batches are queued in order, the partitions side by
    side (aiokafka queues a partition's next batch once the one before it is sent)."""
    name = topic.get_topic_name()
    faust_producer = topic.app.producer
    producer = faust_producer._ensure_producer()  # the started AIOKafkaProducer (Faust 0.15)
    await producer.partitions_for(name)  # the topic's metadata, as aiokafka's send waits for
    chains: dict[int, list[Any]] = {}
    for key, value, headers in messages:
        partition = faust_producer.key_partition(name, key).partition
        builders = chains.get(partition)
        if builders is None:
            builders = chains[partition] = [producer.create_batch()]
        if builders[-1].append(key=key, value=value, timestamp=None, headers=headers) is None:
            builders.append(producer.create_batch())  # full: the record starts the next one
            if builders[-1].append(key=key, value=value, timestamp=None, headers=headers) is None:
                raise DeliveryError(f"a record of {len(value)} bytes does not fit a batch")

    async def send_partition(partition: int, builders: list[Any]) -> None:
        delivered = [await producer.send_batch(b, name, partition=partition) for b in builders]
        await asyncio.gather(*delivered)

    await asyncio.gather(*(send_partition(p, b) for p, b in chains.items()))


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


class Fenced(RuntimeError):
    """A newer producer with the same transactional id took over: this one may not send."""


class TransactionalProducer:
    """A confluent-kafka producer with a transactional id, for a single writer per id.

    Creating one fences every older producer with the same id (the broker bumps the id's
    epoch in ``init_transactions``): their next send raises :class:`Fenced`. ``send``
    commits its records as one transaction and returns once the broker committed it.
    Blocking; one thread at a time."""

    def __init__(
        self, kafka: KafkaConfig, transactional_id: str, *, timeout_s: float = 30.0
    ) -> None:
        from confluent_kafka import Producer

        self.timeout_s = timeout_s
        self._producer = Producer(
            {
                **producer_config(kafka),
                "transactional.id": transactional_id,
                "transaction.timeout.ms": int(max(timeout_s * 2, 60) * 1000),
            }
        )
        self._call(self._producer.init_transactions, timeout_s)

    def send(self, topic: str, messages: Sequence[Outgoing]) -> None:
        """Produce ``messages`` to ``topic`` in one transaction. Raises :class:`Fenced` when
        a newer producer holds the id, :class:`DeliveryError` when the transaction failed
        (it is aborted; nothing of it is visible to read-committed consumers)."""
        self._call(self._producer.begin_transaction)
        try:
            for key, value, headers in messages:
                self._producer.produce(topic, value, key, headers=headers)
            self._call(self._producer.commit_transaction, self.timeout_s)
        except DeliveryError:
            self._abort()
            raise

    def _abort(self) -> None:
        # Best effort: an open transaction also times out on the broker.
        with contextlib.suppress(Exception):
            self._producer.abort_transaction(self.timeout_s)

    @staticmethod
    def _call(method: Any, *args: Any) -> None:
        from confluent_kafka import KafkaError, KafkaException

        try:
            method(*args)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            code = error.code() if error is not None else None
            if code in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED) or (
                error is not None and error.fatal()
            ):
                raise Fenced(f"producer fenced: {error}") from exc
            raise DeliveryError(f"transaction failed: {error}") from exc

    def close(self) -> None:
        self._producer.flush(0)


@dataclass(frozen=True)
class ConsumerLag:
    """How far a consumer group is behind on a topic: the age of its oldest unprocessed
    message (by the message's broker timestamp), and how many messages are unprocessed."""

    seconds: float
    messages: int


class ConsumerLagProbe:
    """Measures a consumer group's lag on one topic from its committed offsets, without
    joining the group. Blocking; one thread at a time.

    On Tansu the end offsets can be short of the true end (defect A), so ``messages`` may
    under-count and a backlog inside the last produce batch can go unseen; ``seconds`` is
    exact whenever a backlog is seen."""

    def __init__(self, kafka: KafkaConfig, topic: str, *, timeout_s: float = 5.0) -> None:
        from confluent_kafka import Consumer

        self.topic = topic
        self.timeout_s = timeout_s
        self._consumer = Consumer(
            {
                "bootstrap.servers": kafka.kafka_broker,
                "group.id": kafka.app_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
            }
        )

    def measure(self, now_s: float) -> ConsumerLag:
        """The group's lag over the whole topic at wall-clock ``now_s`` (Unix seconds)."""
        lags = self.measure_partitions(now_s).values()
        return ConsumerLag(
            seconds=max((lag.seconds for lag in lags), default=0.0),
            messages=sum(lag.messages for lag in lags),
        )

    def measure_partitions(
        self, now_s: float, partitions: Iterable[int] | None = None
    ) -> dict[int, ConsumerLag]:
        """The group's lag per partition (default: every partition of the topic)."""
        from confluent_kafka import TopicPartition

        if partitions is None:
            metadata = self._consumer.list_topics(self.topic, timeout=self.timeout_s)
            topic = metadata.topics.get(self.topic)
            if topic is None or topic.error is not None:
                raise RuntimeError(
                    f"topic {self.topic!r} is not available: {topic and topic.error}"
                )
            partitions = topic.partitions
        wanted = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        if not wanted:
            return {}
        lags: dict[int, ConsumerLag] = {}
        for tp in self._consumer.committed(wanted, timeout=self.timeout_s):
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, tp.partition), timeout=self.timeout_s
            )
            position = tp.offset if tp.offset >= 0 else low
            behind = max(0, high - position)
            stamp = self._timestamp_at(tp.partition, position) if behind else None
            seconds = 0.0 if stamp is None else max(0.0, now_s - stamp / 1000)
            lags[tp.partition] = ConsumerLag(seconds=seconds, messages=behind)
        return lags

    def _timestamp_at(self, partition: int, offset: int) -> int | None:
        from confluent_kafka import TopicPartition

        self._consumer.assign([TopicPartition(self.topic, partition, offset)])
        try:
            message = self._consumer.poll(self.timeout_s)
        finally:
            self._consumer.unassign()
        if message is None or message.error() is not None:
            return None
        kind, stamp = message.timestamp()
        return stamp if kind != 0 and stamp > 0 else None

    def close(self) -> None:
        self._consumer.close()
