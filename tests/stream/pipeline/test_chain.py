"""The batch chain's rules, with fakes below its boundary (topics, store, model); the
real-broker versions of these rules are in tests/stream/test_pipeline.py."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from stream.agents import build_chain
from stream.config import WorkerConfig
from stream.context import WorkerContext
from stream.keywords import Keywords
from stream.metrics import Metrics
from stream.pipeline.exits import (
    EXIT_BATCH_ERROR,
    EXIT_DLQ_LIMIT,
    EXIT_INTERRUPTED,
    EXIT_SINK_DOWN,
)
from stream.pipeline.extraction import KeywordsOnThread
from stream.serving.holder import ModelHolder
from stream.serving.shadow import ShadowCandidate, ShadowRunner
from tests.stream.pipeline.fakes import (
    FakeModel,
    FakeSender,
    FakeStore,
    GatedModel,
    incoming,
    review_bytes,
)


class Stopped(Exception):
    """Raised by the fake ``stop`` instead of ``os._exit``."""


@pytest.fixture(scope="module")
def keywords() -> Keywords:
    return Keywords.load()


def make(keywords, *, store_fail=0, topic_fail=0, model=None, shadow=None, **overrides):
    journal: list = []
    stops: list = []

    def stop(code: int, message: str):
        stops.append((code, message))
        raise Stopped(code)

    overrides.setdefault("worker_data_dir", tempfile.mkdtemp(prefix="chain-"))  # DLQ window
    config = WorkerConfig.resolve(sink_retry_attempts=3, sink_retry_backoff_s=0.01, **overrides)
    metrics = Metrics()
    context = WorkerContext(
        config=config,
        models=ModelHolder(model or FakeModel(), follows_current=True),
        clickhouse=None,  # type: ignore[arg-type]  # not touched by the batch body
        store=FakeStore(journal, store_fail),
        terms=KeywordsOnThread(keywords, ThreadPoolExecutor(1)),
        metrics=metrics,
        shadow=shadow(metrics) if shadow else None,
        stop=stop,
    )
    chain = build_chain(
        context,
        send_sentiments=FakeSender("out", journal, topic_fail),
        send_dead_letters=FakeSender("dlq", journal),
    )
    return chain, journal, stops, context


def run(chain, batch) -> None:
    asyncio.run(chain.process(batch))


def test_batch_dead_letters_and_one_model_call_for_the_valid_reviews(keywords) -> None:
    chain, journal, stops, context = make(keywords)
    run(chain, incoming([review_bytes(1), b"{broken", review_bytes(2), review_bytes(3)]))
    assert stops == []
    assert context.models.current.calls == [3]  # one call for the whole batch
    letters = [entry for entry in journal if entry[0] == "dlq"]
    assert [json.loads(v)["reason"] for _, _, v in letters] == ["malformed_json"]
    assert json.loads(letters[0][2])["offset"] == 1
    published = [entry for entry in journal if entry[0] == "out"]
    assert [json.loads(v)["review_id"] for _, _, v in published] == ["r-1", "r-2", "r-3"]
    assert [k for _, k, _ in published] == [b"p-1", b"p-2", b"p-0"]
    assert ("clickhouse", 3) in journal
    assert context.metrics.events_processed._value.get() == 3


def test_sink_recovering_within_the_retries_is_fine(keywords) -> None:
    chain, journal, stops, context = make(keywords, store_fail=2, topic_fail=2)
    run(chain, incoming([review_bytes(1)]))
    assert stops == []
    assert ("clickhouse", 1) in journal
    assert context.metrics.sink_retries.labels("clickhouse")._value.get() == 2
    assert context.metrics.sink_retries.labels("produce")._value.get() == 2


@pytest.mark.parametrize(("store_fail", "topic_fail"), [(3, 0), (0, 3)])
def test_sink_that_stays_down_stops_the_worker(keywords, store_fail, topic_fail) -> None:
    chain, _, stops, _ = make(keywords, store_fail=store_fail, topic_fail=topic_fail)
    with pytest.raises(Stopped):
        run(chain, incoming([review_bytes(1)]))
    assert stops[0][0] == EXIT_SINK_DOWN
    assert "without acking" in stops[0][1]


def test_dlq_limit_stops_before_anything_is_published(keywords) -> None:
    chain, journal, stops, _ = make(keywords, dlq_limit_window=4, dlq_limit_ratio=0.75)
    with pytest.raises(Stopped):
        run(chain, incoming([b"x", b"y", review_bytes(1), b"z"]))
    assert stops[0][0] == EXIT_DLQ_LIMIT
    assert journal == []


def test_unexpected_error_stops_instead_of_raising_into_take(keywords) -> None:
    chain, journal, stops, context = make(keywords)
    # wrong length: a bug, not a sink outage
    context.models.current.predict_cleaned = lambda texts, cpu=None: []
    with pytest.raises(Stopped):
        run(chain, incoming([review_bytes(1)]))
    assert stops[-1][0] in (EXIT_SINK_DOWN, EXIT_BATCH_ERROR)
    assert not [entry for entry in journal if entry[0] in ("out", "clickhouse")]


def test_cancellation_mid_batch_stops_without_ack(keywords) -> None:
    chain, _, stops, _ = make(keywords)

    async def cancelled_mid_batch() -> None:
        async def hang(_classified) -> None:
            await asyncio.sleep(3600)

        chain.store = hang
        task = asyncio.ensure_future(chain.process(incoming([review_bytes(1)])))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(Stopped):
            await task

    asyncio.run(cancelled_mid_batch())
    assert stops[0][0] == EXIT_INTERRUPTED


def published_versions(journal) -> dict[str, str]:
    events = [json.loads(entry[2]) for entry in journal if entry[0] == "out"]
    return {event["review_id"]: event["model_version"] for event in events}


def test_a_model_swapped_in_during_a_batch_serves_from_the_next_batch_on(keywords) -> None:
    gate = threading.Event()
    chain, journal, stops, context = make(keywords, model=GatedModel("v1", gate=gate))
    first = context.models.current

    async def swap_mid_batch() -> None:
        task = asyncio.ensure_future(chain.process(incoming([review_bytes(i) for i in range(5)])))
        await asyncio.get_running_loop().run_in_executor(None, first.started.wait, 10)
        context.models.swap(GatedModel("v2"))  # what the reloader does, on the event loop
        gate.set()
        await task
        await chain.process(incoming([review_bytes(i) for i in range(5, 9)]))

    asyncio.run(swap_mid_batch())
    assert stops == []
    versions = published_versions(journal)
    assert versions == {f"r-{i}": "v1" if i < 5 else "v2" for i in range(9)}


def test_a_hanging_shadow_never_holds_up_a_batch(keywords) -> None:
    gate = threading.Event()
    candidate = GatedModel(gate=gate)

    def hanging_shadow(metrics: Metrics) -> ShadowRunner:
        runner = ShadowRunner(Journal(), metrics, queue_batches=1, timeout_s=60)
        runner.start(ShadowCandidate(candidate, candidate.version, 1.0, "now"))
        return runner

    chain, journal, stops, context = make(keywords, shadow=hanging_shadow)
    try:

        async def batches() -> None:
            for batch in range(4):
                ids = range(10 * batch, 10 * batch + 10)
                # Each batch returns (safe to ack) while the candidate is still stuck.
                await asyncio.wait_for(
                    chain.process(incoming([review_bytes(i) for i in ids])), timeout=30
                )
                assert not gate.is_set()

        asyncio.run(batches())
        assert candidate.started.is_set() and stops == []
        assert len(published_versions(journal)) == 40
        assert [entry for entry in journal if entry[0] == "clickhouse"] == [("clickhouse", 10)] * 4
        assert context.metrics.events_processed._value.get() == 40
        # One batch in the candidate, one queued, the other two dropped and counted.
        assert context.metrics.shadow_reviews.labels("dropped")._value.get() == 20
    finally:
        gate.set()
        context.shadow.close()


def test_a_shadow_whose_offer_raises_does_not_fail_the_batch(keywords) -> None:
    class Broken:
        def offer(self, classified, served_seconds) -> None:
            raise RuntimeError("shadow bug")

    chain, journal, stops, _ = make(keywords, shadow=lambda metrics: Broken())
    run(chain, incoming([review_bytes(1), review_bytes(2)]))
    assert stops == [] and len(published_versions(journal)) == 2
    assert ("clickhouse", 2) in journal


class Journal:
    def __init__(self) -> None:
        self.rows: list = []

    def write_shadow(self, rows) -> int:
        self.rows.extend(rows)
        return len(rows)
