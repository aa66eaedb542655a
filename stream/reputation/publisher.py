"""Publishing alerts to the alerts topic, awaiting the broker's acknowledgement.

Two implementations of one small protocol: :class:`FaustAlertPublisher` sends through the
worker's Faust producer, :class:`KafkaAlertPublisher` through confluent-kafka (for the
one-shot ``reviewpulse alerts evaluate`` command and tests that drive the engine directly).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from stream.settings import Settings


class AlertPublisher(Protocol):
    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Send ``(key, value)`` messages; return once the broker acknowledged all of
        them, raise if any was not delivered."""


class PublishError(RuntimeError):
    pass


class KafkaAlertPublisher:
    """confluent-kafka producer (acks=all, idempotent, murmur2 keys like Faust's)."""

    def __init__(self, settings: Settings, *, timeout_s: float = 30.0) -> None:
        from confluent_kafka import Producer

        self.topic = settings.alerts_topic
        self.timeout_s = timeout_s
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_broker,
                "acks": "all",
                "enable.idempotence": True,
                "partitioner": "murmur2_random",
                "linger.ms": 5,
            }
        )

    def _send_blocking(self, messages: Sequence[tuple[str, bytes]]) -> None:
        errors: list[str] = []

        def on_delivery(error: Any, message: Any) -> None:
            if error is not None:
                errors.append(str(error))

        for key, value in messages:
            self._producer.produce(
                self.topic, key=key.encode("utf-8"), value=value, on_delivery=on_delivery
            )
        remaining = self._producer.flush(self.timeout_s)
        if remaining:
            # Not delivered: drop them here; the alerts stay pending and are sent again.
            self._producer.purge()
            self._producer.flush(0)
            raise PublishError(f"{remaining} alert(s) not acknowledged in {self.timeout_s}s")
        if errors:
            raise PublishError(f"alert delivery failed: {errors[0]}")

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if messages:
            await asyncio.get_running_loop().run_in_executor(
                None, self._send_blocking, list(messages)
            )

    def close(self) -> None:
        self._producer.flush(self.timeout_s)


class FaustAlertPublisher:
    """Sends through a Faust topic (raw key and value) and awaits each delivery future."""

    def __init__(self, topic: Any) -> None:
        self.topic = topic

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        pending = [
            await self.topic.send(key=key.encode("utf-8"), value=value) for key, value in messages
        ]
        await asyncio.gather(*pending)
