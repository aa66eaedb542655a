"""Publishing alerts to the alerts topic, awaiting the broker's acknowledgement.

Two implementations of one small protocol, both blocking producers on their own thread:

* :class:`FencedAlertPublisher` (the worker): a transactional producer whose id is the
  consumer group's. The member that becomes the evaluator calls :meth:`acquire`, which fences
  every earlier producer with that id at the broker, so a member that was expelled from the
  group but still believes it evaluates cannot publish another alert: its next publish
  raises ``stream.kafka.Fenced`` and it stops.
* :class:`KafkaAlertPublisher` (the one-shot ``reviewpulse alerts`` command and tests that
  drive the engine directly): a plain acknowledged producer that fences nobody.

Both raise if an alert was not delivered; the engine then leaves it pending in the alerts
table (the outbox) and publishes it again at the next evaluation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from stream.kafka import AckedProducer, Fenced, TransactionalProducer

if TYPE_CHECKING:
    from stream.config import KafkaConfig


class AlertPublisher(Protocol):
    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Send ``(key, value)`` messages; return once the broker acknowledged all of
        them, raise if any was not delivered."""


def _records(messages: Sequence[tuple[str, bytes]]) -> list[tuple[bytes, bytes, None]]:
    return [(key.encode("utf-8"), value, None) for key, value in messages]


class KafkaAlertPublisher:
    """Publishes to ``kafka.alerts_topic`` off the event loop; raises
    ``stream.kafka.DeliveryError`` when an alert is not acknowledged within ``timeout_s``."""

    def __init__(self, kafka: KafkaConfig, *, timeout_s: float = 30.0) -> None:
        self.topic = kafka.alerts_topic
        self._producer = AckedProducer(kafka, timeout_s=timeout_s)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="alert-publisher")

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if messages:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self._producer.send, self.topic, _records(messages)
            )

    def close(self) -> None:
        self._producer.close()
        self._executor.shutdown(wait=True)


def transactional_id(kafka: KafkaConfig) -> str:
    """One id per consumer group: at most one live alert producer per deployment."""
    return f"{kafka.app_id}.alerts"


class FencedAlertPublisher:
    """Publishes in transactions under the group's transactional id (see module doc)."""

    def __init__(self, kafka: KafkaConfig, *, timeout_s: float = 30.0) -> None:
        self.kafka = kafka
        self.topic = kafka.alerts_topic
        self.timeout_s = timeout_s
        self.term: int | None = None  # the ownership term the producer was acquired for
        self._producer: TransactionalProducer | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="alert-publisher")

    async def acquire(self, term: int) -> None:
        """Start publishing for ownership ``term``: a fresh producer, fencing older ones."""
        loop = asyncio.get_running_loop()
        self._drop()
        self._producer = await loop.run_in_executor(
            self._executor,
            lambda: TransactionalProducer(
                self.kafka, transactional_id(self.kafka), timeout_s=self.timeout_s
            ),
        )
        self.term = term

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if not messages:
            return
        producer = self._producer
        if producer is None:
            raise Fenced("this member does not hold the alert producer")
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, producer.send, self.topic, _records(messages)
            )
        except Fenced:
            self._drop()
            raise

    def release(self) -> None:
        """Stop publishing (the member lost the evaluator's partition)."""
        self._drop()

    def _drop(self) -> None:
        producer, self._producer, self.term = self._producer, None, None
        if producer is not None:
            self._executor.submit(producer.close)

    def close(self) -> None:
        self._drop()
        self._executor.shutdown(wait=True)
