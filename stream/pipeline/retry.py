"""Retrying a step that talks to a sink: a wrapper, so the steps themselves stay plain."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, ParamSpec, TypeVar

from stream.config import BatchConfig
from stream.metrics import Metrics

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class SinkDown(RuntimeError):
    """A step failed on every attempt: the batch cannot be made durable now. ``step`` names
    it (``model``, ``clickhouse``, ``produce``, ``dead_letter``)."""

    def __init__(self, message: str, step: str = "") -> None:
        super().__init__(message)
        self.step = step


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    first_backoff_s: float
    timeout_s: float
    max_backoff_s: float = 5.0

    @classmethod
    def of(cls, batch: BatchConfig) -> RetryPolicy:
        return cls(
            batch.sink_retry_attempts,
            batch.sink_retry_backoff_s,
            batch.sink_timeout_s,
            batch.sink_retry_max_backoff_s,
        )


class Retrying(Generic[P, T]):
    """``step`` run until it succeeds, each attempt bounded by the policy's timeout, with a
    doubling back-off between attempts, capped so that a returning service is used soon; after
    the last failure it raises :class:`SinkDown`."""

    def __init__(
        self,
        name: str,
        step: Callable[P, Awaitable[T]],
        policy: RetryPolicy,
        metrics: Metrics,
    ) -> None:
        self.name = name
        self.step = step
        self.policy = policy
        self.metrics = metrics

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        delay = min(self.policy.first_backoff_s, self.policy.max_backoff_s)
        attempts = self.policy.attempts
        for number in range(1, attempts + 1):
            try:
                return await asyncio.wait_for(
                    self.step(*args, **kwargs), timeout=self.policy.timeout_s
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if number == attempts:
                    raise SinkDown(
                        f"{self.name} failed {attempts} times, last error {short_error(exc)}",
                        self.name,
                    ) from exc
                log.warning(
                    "%s failed (attempt %d/%d): %s", self.name, number, attempts, short_error(exc)
                )
                self.metrics.sink_retries.labels(self.name).inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.policy.max_backoff_s)
        raise AssertionError("unreachable")


def short_error(exc: BaseException, limit: int = 300) -> str:
    """One line of an exception for logs (ClickHouse errors carry whole stack traces)."""
    text = " ".join(repr(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."
