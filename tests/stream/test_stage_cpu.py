"""Thread CPU time by stage: the ledger, the coroutine wrapper, the worker's steps filling
``reviewpulse_stage_cpu_seconds`` (read by ``bench.stream``)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from model.cputime import ThreadCpu
from stream.config import BatchConfig
from stream.keywords import Keywords
from stream.metrics import STAGES, Charged, Metrics, read_samples
from stream.pipeline.extraction import KeywordsOnThread
from stream.pipeline.inference import ModelOnThread
from stream.pipeline.steps import Classify, PublishSentiments, StoreRows, Validate
from stream.serving.holder import ModelHolder
from tests.stream.pipeline.fakes import FakeModel, FakeSender, FakeStore, incoming, review_bytes

NOW = datetime(2026, 11, 27, 5, 0, 30, tzinfo=UTC)


def burn(seconds: float) -> None:
    """Spend about ``seconds`` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def stage_seconds(metrics: Metrics) -> dict[str, float]:
    text = metrics.exposition()[0].decode()
    samples = read_samples(text, "reviewpulse_stage_cpu_seconds_total")
    return {dict(labels)["stage"]: value for labels, value in samples.items()}


def test_thread_cpu_sums_the_threads_that_did_the_work() -> None:
    cpu = ThreadCpu()

    def work() -> None:
        with cpu.stage("forward"):
            burn(0.02)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with cpu.stage("tokenize"):
        time.sleep(0.05)  # waiting is not CPU time
    assert cpu.seconds["forward"] >= 0.04
    assert cpu.seconds["tokenize"] < 0.02


def test_every_stage_is_exported_from_the_start() -> None:
    assert stage_seconds(Metrics()) == dict.fromkeys(STAGES, 0.0)


def test_charged_counts_only_the_awaited_coroutine_steps() -> None:
    charged: list[float] = []

    async def send() -> str:
        burn(0.01)
        await asyncio.sleep(0.15)  # meanwhile another task burns CPU on the same thread
        return "acked"

    async def other() -> None:
        await asyncio.sleep(0.01)
        burn(0.1)

    async def main() -> str:
        result, _ = await asyncio.gather(Charged(send(), charged.append), other())
        return result

    assert asyncio.run(main()) == "acked"
    assert len(charged) == 1
    assert 0.01 <= charged[0] < 0.05


def test_charged_passes_errors_and_cancellation_through() -> None:
    charged: list[float] = []

    async def fails() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("broker down")

    async def waits() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        with pytest.raises(RuntimeError, match="broker down"):
            await Charged(fails(), charged.append)
        task = asyncio.ensure_future(Charged(waits(), charged.append))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert len(charged) == 2


def test_the_steps_charge_their_stages() -> None:
    metrics = Metrics()
    messages = incoming([review_bytes(i) for i in range(200)] + [b"{"])
    batch = Validate(BatchConfig(), metrics, clock=lambda: NOW)(messages)
    with ThreadPoolExecutor(1) as model_thread, ThreadPoolExecutor(1) as keywords_thread:
        classify = Classify(
            ModelHolder(FakeModel(), follows_current=True),
            KeywordsOnThread(Keywords.load(), keywords_thread),
            run_model=ModelOnThread(model_thread),
            metrics=metrics,
            clock=lambda: NOW,
        )
        classified = asyncio.run(classify(batch.valid))
        asyncio.run(
            PublishSentiments(FakeSender("out", []), metrics, clock=lambda: NOW)(classified)
        )
        with ThreadPoolExecutor(1) as clickhouse_thread:
            asyncio.run(StoreRows(FakeStore([]), clickhouse_thread, metrics)(classified))
    seconds = stage_seconds(metrics)
    # The fake model reports nothing; every stage the worker itself runs is charged.
    for stage in ("decode_validate", "clean", "segment", "build", "encode", "produce", "insert"):
        assert seconds[stage] > 0, stage
    assert seconds["tokenize"] == seconds["forward"] == 0
