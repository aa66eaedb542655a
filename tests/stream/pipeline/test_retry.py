"""The retry wrapper: attempts, back-off, per-attempt timeout, and giving up."""

from __future__ import annotations

import asyncio

import pytest

from stream.metrics import Metrics
from stream.pipeline.retry import Retrying, RetryPolicy, SinkDown, short_error


class Flaky:
    def __init__(self, failures: int, *, hang: bool = False) -> None:
        self.failures, self.hang, self.calls = failures, hang, 0

    async def __call__(self, value: int) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            if self.hang:
                await asyncio.sleep(3600)
            raise ConnectionError(f"down ({self.calls})")
        return value * 2


def retrying(step, attempts: int = 3, timeout_s: float = 5.0) -> Retrying:
    return Retrying("clickhouse", step, RetryPolicy(attempts, 0.001, timeout_s), Metrics())


def test_a_step_that_recovers_returns_its_result_and_counts_retries() -> None:
    wrapped = retrying(Flaky(2))
    assert asyncio.run(wrapped(21)) == 42
    assert wrapped.metrics.sink_retries.labels("clickhouse")._value.get() == 2


def test_a_step_that_stays_down_raises_sink_down_after_the_last_attempt() -> None:
    step = Flaky(10)
    with pytest.raises(SinkDown, match=r"clickhouse failed 3 times.*down \(3\)"):
        asyncio.run(retrying(step)(1))
    assert step.calls == 3


def test_an_attempt_that_hangs_is_timed_out_and_retried() -> None:
    step = Flaky(1, hang=True)
    assert asyncio.run(retrying(step, timeout_s=0.05)(2)) == 4
    assert step.calls == 2


def test_short_error_keeps_one_bounded_line() -> None:
    text = short_error(RuntimeError("a   b " + "x" * 1000))
    assert "\n" not in text and len(text) <= 303 and text.startswith("RuntimeError('a b")


def test_the_back_off_doubles_up_to_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Delays 0.5, 1, 2, 4, then the cap: a service back after a long outage is used within
    the cap, not after a doubled delay of half a minute."""
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def record(delay: float) -> None:
        delays.append(delay)
        await real_sleep(0)

    monkeypatch.setattr("stream.pipeline.retry.asyncio.sleep", record)
    policy = RetryPolicy(attempts=8, first_backoff_s=0.5, timeout_s=5.0, max_backoff_s=5.0)
    wrapped = Retrying("clickhouse", Flaky(7), policy, Metrics())
    assert asyncio.run(wrapped(1)) == 2
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_the_policy_comes_from_the_batch_settings() -> None:
    from stream.config import WorkerConfig

    batch = WorkerConfig.resolve(sink_retry_max_backoff_s=2.5, sink_retry_attempts=4).batch
    assert RetryPolicy.of(batch) == RetryPolicy(4, 0.5, batch.sink_timeout_s, 2.5)
