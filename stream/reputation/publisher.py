"""Publishing alerts to the alerts topic, awaiting the broker's acknowledgement.

Two implementations of one small protocol: :class:`FaustAlertPublisher` sends through the
worker's Faust producer, :class:`KafkaAlertPublisher` through a blocking
``stream.kafka.AckedProducer`` (for the one-shot ``reviewpulse alerts`` command and tests
that drive the engine directly). Both raise if any alert was not acknowledged; the engine
then leaves it pending and publishes it again at the next evaluation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from stream.kafka import AckedProducer, send_and_await

if TYPE_CHECKING:
    from faust.types import TopicT

    from stream.config import KafkaConfig


class AlertPublisher(Protocol):
    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Send ``(key, value)`` messages; return once the broker acknowledged all of
        them, raise if any was not delivered."""


class KafkaAlertPublisher:
    """Publishes to ``kafka.alerts_topic`` off the event loop; raises
    ``stream.kafka.DeliveryError`` when an alert is not acknowledged within ``timeout_s``."""

    def __init__(self, kafka: KafkaConfig, *, timeout_s: float = 30.0) -> None:
        self.topic = kafka.alerts_topic
        self._producer = AckedProducer(kafka, timeout_s=timeout_s)

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if messages:
            records = [(key.encode("utf-8"), value, None) for key, value in messages]
            await asyncio.get_running_loop().run_in_executor(
                None, self._producer.send, self.topic, records
            )

    def close(self) -> None:
        self._producer.close()


class FaustAlertPublisher:
    """Sends through a raw Faust topic (``stream.kafka.raw_topic``) and awaits every ack."""

    def __init__(self, topic: TopicT) -> None:
        self.topic = topic

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        await send_and_await(
            self.topic, [(key.encode("utf-8"), value, None) for key, value in messages]
        )
