"""Classification in the model's own child process (``model-executor process``): the same
predictions as on the model thread, a reload warmed there before the swap, a child killed for
real replaced and its batch retried, and the worker context wiring it up."""

from __future__ import annotations

import asyncio
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from model.corpus import SHIPPED_CORPUS
from model.cputime import ThreadCpu
from model.predictor import SentimentModel
from model.registry import set_current
from model.text import clean_text
from stream.agents import build_chain
from stream.config import ModelConfig, ServingConfig, WorkerConfig
from stream.context import WorkerContext
from stream.metrics import Metrics
from stream.pipeline.extraction import KeywordsOnThread
from stream.pipeline.inference import ModelOnThread, ModelProcess, ModelProcessDied
from stream.replay import read_corpus
from stream.serving.holder import ModelHolder
from stream.serving.loader import load_checked, load_options
from stream.serving.reload import RegistryWatcher, Reloader
from stream.startup import PreparedKeywords
from tests.stream.child_processes import wait_gone
from tests.stream.pipeline.fakes import FakeSender, FakeStore, incoming, review_bytes
from tests.stream.serving.registry import NAME, SHIPPED, publish_copy

OPTIONS = load_options(ModelConfig(model_threads=2))


@pytest.fixture(scope="module")
def texts() -> list[str]:
    cleaned = (clean_text(source.text) for source in read_corpus(SHIPPED_CORPUS))
    return [text for text in cleaned if text][::25][:400]  # a spread of labels


@pytest.fixture(scope="module")
def served() -> SentimentModel:
    return SentimentModel.load(SHIPPED, **OPTIONS)


@pytest.fixture(scope="module")
def child():
    process = ModelProcess(OPTIONS)
    process.start(SHIPPED).result(timeout=120)
    yield process
    process.close()


def test_the_child_predicts_what_the_model_thread_predicts(child, served, texts) -> None:
    cpu = ThreadCpu()
    predictions, seconds = asyncio.run(child(served, texts, cpu))
    with ThreadPoolExecutor(1) as thread:
        expected, _ = asyncio.run(ModelOnThread(thread)(served, texts, ThreadCpu()))
    assert [p.label for p in predictions] == [p.label for p in expected]
    for got, want in zip(predictions, expected, strict=True):
        assert (got.tokens, got.unknown_tokens) == (want.tokens, want.unknown_tokens)
        assert got.probabilities == pytest.approx(want.probabilities, abs=1e-6)
    assert {p.label for p in predictions} == {"negative", "neutral", "positive"}
    # Its CPU time by stage comes back from the child (no thread here did that work).
    assert cpu.seconds["tokenize"] > 0 and cpu.seconds["forward"] > 0
    assert seconds > 0
    assert child.pid is not None and child.pid != os.getpid()


def test_a_model_whose_directory_holds_another_version_is_not_served_from_there(
    child, texts
) -> None:
    elsewhere = SimpleNamespace(directory=SHIPPED, version="not-what-is-there")
    with pytest.raises(RuntimeError, match="was the directory changed"):
        asyncio.run(child(elsewhere, texts[:3], ThreadCpu()))


def test_a_killed_child_is_replaced_and_loads_the_model_again(served, texts) -> None:
    restarts: list[int] = []
    process = ModelProcess(OPTIONS, restarted=lambda: restarts.append(1))
    try:
        first = process.start(SHIPPED).result(timeout=120)

        async def kill_mid_batch():
            asyncio.get_running_loop().call_later(0.05, os.kill, first, signal.SIGKILL)
            with pytest.raises(ModelProcessDied, match=f"pid {first}"):
                await process(served, texts * 10, ThreadCpu())
            return await process(served, texts[:20], ThreadCpu())

        predictions, _ = asyncio.run(kill_mid_batch())
        assert len(predictions) == 20
        assert restarts == [1]
        assert wait_gone(first)
        assert process.pid not in (None, first)
    finally:
        process.close()


def test_a_reload_loads_the_new_model_in_the_child_before_the_swap(registry, texts) -> None:
    config = ModelConfig(model_registry=registry, model_name=NAME, model_version="current")
    process = ModelProcess(load_options(config))
    warmed: list[Path] = []

    def warm(directory: Path) -> None:
        warmed.append(directory)
        process.load(directory)

    loader = ThreadPoolExecutor(1, thread_name_prefix="model-loader")
    try:
        first = load_checked(config, "current", tolerance=0.25)
        process.start(first.directory).result(timeout=120)
        holder = ModelHolder(first, follows_current=True)
        reloader = Reloader(
            holder,
            RegistryWatcher(config, ServingConfig(), warm=warm),
            loader,
            Metrics(),
            model_name=NAME,
        )
        publish_copy(registry, "v2", make_current=True)
        asyncio.run(reloader.poll())
        assert holder.current.version == "v2"
        assert warmed == [registry / NAME / "v2"]
        predictions, _ = asyncio.run(process(holder.current, texts[:10], ThreadCpu()))
        assert len(predictions) == 10
        # The version before stays loaded too (a batch in flight may still use it).
        older, _ = asyncio.run(process(first, texts[:10], ThreadCpu()))
        assert [p.label for p in older] == [p.label for p in predictions]
        set_current(registry, NAME, "v1")
        asyncio.run(reloader.poll())
        assert holder.current.version == "v1" and len(warmed) == 2
    finally:
        loader.shutdown()
        process.close()


def test_a_batch_whose_model_child_died_is_retried_on_a_new_child(served, texts, tmp_path) -> None:
    journal: list = []
    stops: list = []
    acked: list = []
    config = WorkerConfig.resolve(
        sink_retry_attempts=3, sink_retry_backoff_s=0.01, worker_data_dir=tmp_path
    )
    metrics = Metrics()
    process = ModelProcess(OPTIONS, restarted=metrics.model_process_restarts.inc)
    context = WorkerContext(
        config=config,
        models=ModelHolder(served, follows_current=True),
        clickhouse=None,  # type: ignore[arg-type]  # the batch body uses the store
        store=FakeStore(journal),
        terms=KeywordsOnThread(PreparedKeywords(limit=5), ThreadPoolExecutor(1)),
        metrics=metrics,
        stop=lambda code, message: stops.append((code, message)),
        inference=process,
    )
    chain = build_chain(
        context,
        send_sentiments=FakeSender("out", journal),
        send_dead_letters=FakeSender("dlq", journal),
    )
    try:
        first = process.start(SHIPPED).result(timeout=120)

        async def run():
            async def ack():
                acked.append(1)

            asyncio.get_running_loop().call_later(0.05, os.kill, first, signal.SIGKILL)
            reviews = [review_bytes(i, text=texts[i % len(texts)]) for i in range(3000)]
            await chain.submit(incoming(reviews), ack)
            await chain.drain()

        asyncio.run(run())
        assert stops == []
        assert acked == [1]
        assert ("clickhouse", 3000) in journal
        assert metrics.model_process_restarts._value.get() == 1
        assert metrics.sink_retries.labels("model")._value.get() == 1
        assert process.pid not in (None, first)
    finally:
        context.terms.close()
        process.close()
        context.clickhouse_executor.shutdown(wait=True)


def test_the_worker_context_classifies_where_the_setting_says() -> None:
    in_child = WorkerContext.create(WorkerConfig.resolve(model_executor="process"))
    on_thread = WorkerContext.create(WorkerConfig.resolve(model_executor="thread"))
    try:
        assert isinstance(in_child.inference, ModelProcess)
        assert isinstance(on_thread.inference, ModelOnThread)
        assert on_thread.inference.executor is on_thread.model_executor
        assert WorkerConfig.resolve().batch.model_executor == "process"
    finally:
        in_child.close()
        on_thread.close()
