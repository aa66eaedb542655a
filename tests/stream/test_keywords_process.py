"""Keyword extraction in its own child process (``keywords-executor process``): the same
terms as on a thread, a child killed for real is replaced and its batch retried, one that
keeps dying stops the worker without an ack, and no child outlives the worker."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from model.corpus import SHIPPED_CORPUS
from model.text import clean_text
from stream.agents import build_chain
from stream.config import WorkerConfig
from stream.context import WorkerContext
from stream.keywords import Keywords
from stream.metrics import Metrics
from stream.pipeline.exits import EXIT_SINK_DOWN
from stream.pipeline.extraction import KeywordsOnThread, KeywordsProcess, KeywordsProcessDied
from stream.pipeline.poison import marker_path
from stream.replay import read_corpus
from stream.serving.holder import ModelHolder
from stream.startup import PreparedKeywords, Startup
from tests.stream.child_processes import alive, wait_gone
from tests.stream.pipeline.fakes import FakeModel, FakeSender, FakeStore, incoming, review_bytes

ROOT = Path(__file__).resolve().parents[2]


class Stopped(Exception):
    """Raised by the fake ``stop`` instead of ``os._exit``."""


@pytest.fixture(scope="module")
def texts() -> list[str]:
    cleaned = (clean_text(source.text) for source in read_corpus(SHIPPED_CORPUS))
    return [text for text in cleaned if text][:600]


@pytest.fixture(scope="module")
def expected(texts) -> list:
    keywords = Keywords.load(limit=5)
    return [keywords.extract(text) for text in texts]


@pytest.fixture
def child():
    process = KeywordsProcess(limit=5)
    process.start().result(timeout=60)
    yield process
    process.close()


def test_the_child_extracts_what_the_thread_extracts(child, texts, expected) -> None:
    terms, seconds = asyncio.run(child(texts))
    assert terms == expected
    assert any(term.complaint_keywords for term in terms)
    assert seconds > 0  # the child's CPU time: the segment stage
    assert child.pid is not None and child.pid != os.getpid()


def test_on_a_thread_it_is_the_same_extraction(texts, expected) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as thread:
        terms, seconds = asyncio.run(KeywordsOnThread(PreparedKeywords(limit=5), thread)(texts))
    assert terms == expected
    assert seconds > 0


def test_a_killed_child_is_replaced_and_the_next_call_gets_a_new_one(
    child, texts, expected
) -> None:
    first = child.pid
    assert first is not None

    async def kill_mid_batch():
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, os.kill, first, signal.SIGKILL)
        with pytest.raises(KeywordsProcessDied, match=f"pid {first}"):
            await child(texts * 4)  # long enough to be in hand when the kill lands
        return await child(texts[:20])

    terms, _ = asyncio.run(kill_mid_batch())
    assert terms == expected[:20]
    assert wait_gone(first)
    assert child.pid not in (None, first)


def make_chain(tmp: Path, **overrides):
    """The worker's chain over a context whose jieba runs in a child process; fakes below
    the boundary (topics, store, model)."""
    journal: list = []
    stops: list = []
    acked: list = []

    def stop(code: int, message: str):
        stops.append((code, message))
        raise Stopped(code)

    config = WorkerConfig.resolve(
        sink_retry_attempts=3,
        sink_retry_backoff_s=0.01,
        worker_data_dir=tmp,
        keywords_executor="process",
        **overrides,
    )
    metrics = Metrics()
    process = KeywordsProcess(limit=5, restarted=metrics.keywords_process_restarts.inc)
    context = WorkerContext(
        config=config,
        models=ModelHolder(FakeModel(), follows_current=True),
        clickhouse=None,  # type: ignore[arg-type]  # the batch body uses the store
        store=FakeStore(journal),
        terms=process,
        metrics=metrics,
        stop=stop,
    )
    chain = build_chain(
        context,
        send_sentiments=FakeSender("out", journal),
        send_dead_letters=FakeSender("dlq", journal),
    )
    return chain, context, journal, stops, acked


def close(context: WorkerContext) -> None:
    """What ``WorkerContext.close`` does for the parts these tests use (no ClickHouse)."""
    context.terms.close()
    for executor in (context.model_executor, context.clickhouse_executor):
        executor.shutdown(wait=True)


def long_reviews(texts: list[str], count: int) -> list[bytes]:
    return [review_bytes(i, text=texts[i % len(texts)]) for i in range(count)]


def test_a_batch_whose_child_died_is_retried_on_a_new_child(texts, tmp_path) -> None:
    chain, context, journal, stops, acked = make_chain(tmp_path)
    process = context.terms
    try:
        first = process.start().result(timeout=60)

        async def run():
            async def ack():
                acked.append(1)

            asyncio.get_running_loop().call_later(0.02, os.kill, first, signal.SIGKILL)
            await chain.submit(incoming(long_reviews(texts, 2000)), ack)
            await chain.drain()

        asyncio.run(run())
        assert stops == []
        assert acked == [1]
        assert ("clickhouse", 2000) in journal
        assert context.metrics.keywords_process_restarts._value.get() == 1
        assert context.metrics.sink_retries.labels("model")._value.get() == 1
        assert process.pid not in (None, first)
    finally:
        close(context)


def test_a_child_that_keeps_dying_stops_the_worker_without_ack(texts, tmp_path) -> None:
    chain, context, journal, stops, acked = make_chain(tmp_path)
    process = context.terms
    done = threading.Event()
    killed: list[int] = []

    def killer() -> None:  # kills every child as soon as it is up
        while not done.is_set():
            pid = process.pid
            if pid is not None and pid not in killed:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.005)

    watcher = threading.Thread(target=killer, daemon=True)
    try:
        process.start().result(timeout=60)
        watcher.start()

        async def run():
            async def ack():
                acked.append(1)

            await chain.submit(incoming(long_reviews(texts, 2000)), ack)
            await chain.drain()

        with pytest.raises(Stopped):
            asyncio.run(run())
    finally:
        done.set()
        watcher.join()
        close(context)
    assert stops[0][0] == EXIT_SINK_DOWN
    assert "model failed 3 times" in stops[0][1]
    assert acked == [] and journal == []
    # The model step runs in this worker: the input in hand may be the cause, so the
    # in-flight marker keeps naming it for the next start's crash count.
    marker = json.loads(marker_path(tmp_path, context.config.kafka.app_id).read_text())
    assert len(marker["positions"]) == 2000
    assert len(killed) >= 3
    assert all(wait_gone(pid) for pid in killed)


def test_close_stops_the_child(texts) -> None:
    process = KeywordsProcess(limit=5)
    pid = process.start().result(timeout=60)
    asyncio.run(process(texts[:5]))
    process.close()
    assert wait_gone(pid)
    assert multiprocessing.active_children() == []
    with pytest.raises(RuntimeError, match="closed"):
        process.start()


def test_the_child_leaves_with_a_killed_worker(tmp_path) -> None:
    """A worker that dies without closing (SIGKILL, the OOM killer, ``os._exit``) leaves no
    keywords process behind."""
    script = tmp_path / "owner.py"
    script.write_text(
        "import sys, time\n"
        "from stream.pipeline.extraction import KeywordsProcess\n"
        "if __name__ == '__main__':\n"
        "    print(KeywordsProcess(limit=5).start().result(timeout=60), flush=True)\n"
        "    time.sleep(60)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        pid = int(owner.stdout.readline())
        assert alive(pid)
        owner.kill()
        owner.wait(10)
        assert wait_gone(pid)
    finally:
        if owner.poll() is None:
            owner.kill()


def test_the_worker_context_runs_jieba_where_the_setting_says() -> None:
    process = WorkerContext.create(WorkerConfig.resolve(keywords_executor="process"))
    thread = WorkerContext.create(WorkerConfig.resolve(keywords_executor="thread"))
    try:
        assert isinstance(process.terms, KeywordsProcess)
        assert isinstance(thread.terms, KeywordsOnThread)
        assert WorkerConfig.resolve().batch.keywords_executor == "process"
    finally:
        process.close()
        thread.close()


def test_a_watched_startup_part_is_done_with_its_future() -> None:
    startup = Startup(clock=iter([1.0, 3.5]).__next__)
    loading: Future = Future()
    startup.watch("keywords", loading)
    assert startup.status()["parts"] == {"keywords": "starting"}
    loading.set_result(1234)
    assert startup.done
    assert startup.status() == {"status": "ok", "parts": {"keywords": "ok in 2.50s"}}


def test_the_startup_waits_for_jieba_in_the_child() -> None:
    context = WorkerContext.create(WorkerConfig.resolve(keywords_executor="process"))
    try:
        assert context.terms is not None
        ready = context.terms.start()
        context.startup.watch("keywords", ready)
        assert ready.result(timeout=60) == context.terms.pid
        asyncio.run(context.startup.wait())
        assert context.startup.status()["parts"]["keywords"].startswith("ok in")
    finally:
        context.close()
    assert multiprocessing.active_children() == []
