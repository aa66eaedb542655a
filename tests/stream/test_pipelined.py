"""The pipelined batch chain (issue 12): batch N+1 is validated and classified while batch N's
sinks run; batches are acked strictly in take order and only once durable; the in-flight
window is the backpressure. Fakes sit below the chain's boundary only (the topics, the
ClickHouse store, the crash ledger's connection); the window, the chain, the steps, the retry
wrapper, the poison marker and the executors are the worker's own. The same rules on the real
broker and ClickHouse: tests/stream/test_pipelined_worker.py."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stream.agents import build_chain
from stream.config import WorkerConfig
from stream.context import WorkerContext
from stream.health import Heartbeat
from stream.keywords import Keywords
from stream.metrics import Metrics, read_samples
from stream.pipeline.chain import BatchChain
from stream.pipeline.exits import EXIT_DLQ_LIMIT, EXIT_INTERRUPTED, EXIT_SINK_DOWN
from stream.pipeline.extraction import KeywordsOnThread
from stream.pipeline.inflight import InflightWindow
from stream.pipeline.poison import marker_path
from stream.pipeline.steps import Incoming
from stream.rows import ClassifiedReview
from stream.serving.holder import ModelHolder
from tests.stream.pipeline.fakes import FakeModel, GatedModel, review_bytes

TOPIC = "review.created"


class Stopped(Exception):
    """Raised by the fake ``stop`` instead of ``os._exit``."""


def batch(partition: int, size: int = 4, *, bad: int = 0) -> list[Incoming]:
    """``size`` messages of one partition (one partition per batch, so the store and the
    topics can tell batches apart), the last ``bad`` of them malformed."""
    values = [
        review_bytes(i, review_id=f"p{partition}-{i}") if i < size - bad else b"{broken"
        for i in range(size)
    ]
    return [Incoming(TOPIC, partition, i, b"p", value) for i, value in enumerate(values)]


class Store:
    """The ClickHouse seam: records each insert by the partitions in its token; an insert of a
    gated partition waits at the gate (a slow ClickHouse), one of a failing partition fails on
    every attempt (ClickHouse down for that batch)."""

    def __init__(self, journal: list) -> None:
        self.journal = journal
        self.gates: dict[int, threading.Event] = {}
        self.failing: set[int] = set()
        self.waiting = threading.Event()

    def write_reviews(self, rows: Sequence, *, token: str | None = None) -> int:
        partitions = {int(part.split(":")[1]) for part in (token or "").split(";") if part}
        for partition in partitions & set(self.gates):
            self.waiting.set()
            assert self.gates[partition].wait(30)
        if partitions & self.failing:
            raise ConnectionError(f"clickhouse down for partition {sorted(partitions)}")
        self.journal.append(("clickhouse", sorted(partitions)))
        return len(rows)


class Topic:
    """A topic send that journals what the broker acknowledged; sends of a partition in
    ``gates`` wait for its asyncio gate first."""

    def __init__(self, name: str, journal: list) -> None:
        self.name, self.journal = name, journal
        self.gates: dict[str, asyncio.Event] = {}  # review_id prefix -> gate

    async def __call__(self, messages: Sequence) -> None:
        ids = [json.loads(value).get("review_id", "") for _, value, _ in messages]
        for prefix, gate in self.gates.items():
            if any(str(rid).startswith(prefix) for rid in ids):
                await gate.wait()
        self.journal.append((self.name, ids))


class NoCrashes:
    """The crash ledger's connection: no message ever crashed a worker, unless listed."""

    database = "test"
    cluster = ""

    def __init__(self, crashes: dict[tuple[str, int, int], int] | None = None) -> None:
        self.crashes = crashes or {}

    def query(self, sql: str) -> list[tuple]:
        return [(*position, n) for position, n in self.crashes.items()]

    def insert(self, table, columns, rows) -> None:
        raise AssertionError("no marker was left, so nothing is recorded")


class Pipeline:
    """The worker's chain (``stream.agents.build_chain``) over fakes below its boundary,
    with a window of ``limit`` batches; ``acked`` lists the batches acked, in order."""

    def __init__(
        self,
        keywords: Keywords,
        tmp_path: Path,
        *,
        limit: int = 2,
        crashes=None,
        model: FakeModel | None = None,
        **overrides,
    ) -> None:
        self.journal: list = []
        self.stops: list[tuple[int, str]] = []
        self.acked: list[int] = []
        self.store = Store(self.journal)
        self.out = Topic("out", self.journal)
        self.dlq = Topic("dlq", self.journal)
        settings = {"sink_retry_attempts": 3, "sink_retry_backoff_s": 0.05} | overrides
        self.config = WorkerConfig.resolve(
            max_inflight_batches=limit, worker_data_dir=tmp_path, **settings
        )
        self.model = model or FakeModel()
        self.context = WorkerContext(
            config=self.config,
            models=ModelHolder(self.model, follows_current=True),
            clickhouse=None,  # type: ignore[arg-type]  # the batch body uses the store
            ledger_clickhouse=NoCrashes(crashes),  # type: ignore[arg-type]
            store=self.store,
            terms=KeywordsOnThread(keywords, ThreadPoolExecutor(1)),
            metrics=Metrics(),
            stop=self.stop,
        )
        self.chain: BatchChain = build_chain(
            self.context, send_sentiments=self.out, send_dead_letters=self.dlq
        )
        self.marker = marker_path(tmp_path, self.config.kafka.app_id)

    def stop(self, code: int, message: str):
        self.stops.append((code, message))
        raise Stopped(code)

    def ack(self, number: int):
        async def ack() -> None:
            self.acked.append(number)

        return ack

    async def submit(self, number: int, messages: list[Incoming]) -> None:
        await self.chain.submit(messages, self.ack(number))

    def stored(self) -> list[int]:
        return [p for entry in self.journal if entry[0] == "clickhouse" for p in entry[1]]

    def published(self) -> list[str]:
        return [rid for entry in self.journal if entry[0] == "out" for rid in entry[1]]

    def marked(self) -> set[tuple[int, int]]:
        """(partition, offset) of the messages the in-flight marker names."""
        if not self.marker.exists():
            return set()
        return {(p, o) for _, p, o in json.loads(self.marker.read_text())["positions"]}

    def close(self) -> None:
        for executor in (
            self.context.model_executor,
            self.context.terms.executor,
            self.context.clickhouse_executor,
            self.context.ledger_executor,
        ):
            executor.shutdown(wait=False, cancel_futures=True)


@pytest.fixture(scope="module")
def keywords() -> Keywords:
    return Keywords.load()


@pytest.fixture
def pipeline(keywords: Keywords, tmp_path: Path):
    made: list[Pipeline] = []

    def build(**options) -> Pipeline:
        made.append(Pipeline(keywords, tmp_path, **options))
        return made[-1]

    yield build
    for one in made:
        for gate in one.store.gates.values():
            gate.set()
        one.close()


async def until(condition, what: str) -> None:
    """Let the loop and the threads run until ``condition()`` (a generous bound, no timing)."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def positions(messages: list[Incoming]) -> set[tuple[int, int]]:
    return {(m.partition, m.offset) for m in messages}


def test_the_next_batch_is_classified_while_the_last_one_is_written(pipeline) -> None:
    p = pipeline(limit=2)
    p.store.gates[0] = threading.Event()  # batch 0's insert hangs: a slow ClickHouse

    async def scenario() -> None:
        await p.submit(0, batch(0))  # returns at once: one batch in flight, room for another
        await until(p.store.waiting.is_set, "batch 0's insert started")
        second = asyncio.ensure_future(p.submit(1, batch(1)))
        await until(lambda: len(p.model.calls) == 2, "batch 1 classified")
        assert p.stored() == [] and p.acked == []  # batch 0 is still being written
        assert p.marked() == positions(batch(0)) | positions(batch(1))
        assert not second.done()  # the window is full: the agent takes nothing more
        p.store.gates[0].set()
        await second
        await p.chain.drain()

    asyncio.run(scenario())
    assert p.stops == []
    assert p.acked == [0, 1] and p.stored() == [0, 1]
    assert not p.marker.exists()  # nothing in hand any more


def test_the_next_batch_is_taken_and_validated_while_the_last_one_is_classified(
    pipeline,
) -> None:
    """The model thread finds the next batch waiting: submit returns once a batch is
    validated (its dead letters are known), before it is classified; batches are classified
    in take order, and written and acked in it."""
    gate = threading.Event()
    p = pipeline(limit=3, model=GatedModel(label="positive", gate=gate))

    async def scenario() -> None:
        await p.submit(0, batch(0, size=4))
        await until(p.model.started.is_set, "batch 0 is being classified")
        await p.submit(1, batch(1, size=3, bad=1))  # returns while batch 0 is classified
        assert p.model.calls == [4]  # batch 1 waits for the model thread, validated
        assert p.context.metrics.events_consumed._value.get() == 7
        assert p.marked() == positions(batch(0)) | positions(batch(1, size=3))
        assert p.journal == [] and p.acked == []
        gate.set()
        await p.chain.drain()

    asyncio.run(scenario())
    assert p.stops == []
    assert p.model.calls == [4, 2]
    assert p.acked == [0, 1] and p.stored() == [0, 1]
    assert not p.marker.exists()


def test_a_model_that_fails_on_every_attempt_blames_its_own_batch_only(pipeline) -> None:
    """A batch whose classification fails in its flight stops the worker unacked, with the
    in-flight marker naming that batch's messages (the next start counts their crash), not
    those of the batch validated behind it."""
    gate = threading.Event()
    p = pipeline(
        limit=3,
        model=GatedModel(gate=gate, error=RuntimeError("model broke")),
        sink_retry_attempts=1,
    )

    async def scenario() -> None:
        await p.submit(0, batch(0))
        await until(p.model.started.is_set, "batch 0 is being classified")
        await p.submit(1, batch(1))
        gate.set()
        with pytest.raises(Stopped):
            await p.chain.drain()

    asyncio.run(scenario())
    assert p.stops[0][0] == EXIT_SINK_DOWN and "model" in p.stops[0][1]
    assert p.acked == [] and p.journal == []
    assert p.marked() == positions(batch(0))


@pytest.mark.parametrize("failing", ["clickhouse", "produce"])
def test_a_batch_whose_sink_fails_is_never_acked_even_when_a_later_one_finished_first(
    pipeline, failing: str
) -> None:
    p = pipeline(limit=3, sink_timeout_s=0.2)
    if failing == "clickhouse":
        p.store.failing.add(0)  # every attempt of batch 0's insert fails
    else:
        p.out.gates["p0-"] = asyncio.Event()  # batch 0's events are never acknowledged

    async def scenario() -> None:
        await p.submit(0, batch(0))
        await p.submit(1, batch(1))
        # Batch 1's outputs become durable while batch 0 is still being retried.
        await until(lambda: 1 in p.stored() and "p1-0" in p.published(), "batch 1 durable")
        assert p.acked == []
        with pytest.raises(Stopped):
            await p.chain.drain()

    asyncio.run(scenario())
    assert p.acked == []  # neither the failed batch nor the later, durable one
    [(code, message)] = p.stops
    assert code == EXIT_SINK_DOWN
    assert "stopping without acking the batch (review.created[0]@0-3)" in message
    assert not p.marker.exists()  # a sink outside is down: no crash counted for the input


def test_acks_follow_the_take_order_when_a_later_batch_is_durable_first(pipeline) -> None:
    p = pipeline(limit=3)

    async def scenario() -> None:
        p.out.gates["p0-"] = asyncio.Event()  # batch 0's produce is slow
        await p.submit(0, batch(0))
        await p.submit(1, batch(1))
        await until(lambda: 1 in p.stored() and "p1-0" in p.published(), "batch 1 durable")
        await asyncio.sleep(0.05)
        assert p.acked == []  # batch 1 waits for batch 0
        p.out.gates["p0-"].set()
        await p.chain.drain()

    asyncio.run(scenario())
    assert p.stops == [] and p.acked == [0, 1]


def test_a_slow_clickhouse_keeps_batches_in_flight_and_memory_bounded(pipeline) -> None:
    """The agent submits 12 batches as fast as it can; the insert hangs. The window stays at
    its limit, the agent stops taking (the rest stays in Kafka), and the reviews held in
    memory are those of the batches in flight; released, all go through in order."""
    p = pipeline(limit=2)
    p.store.gates[0] = threading.Event()
    size, batches, taken = 32, 12, []

    async def agent() -> None:
        for number in range(batches):
            taken.append(number)
            await p.submit(number, batch(number, size))

    async def scenario() -> None:
        feeding = asyncio.ensure_future(agent())
        await until(lambda: len(p.model.calls) == 2, "two batches classified")
        for _ in range(20):  # the loop and the threads get every chance to take more
            await asyncio.sleep(0.01)
        assert taken == [0, 1] and len(p.model.calls) == 2
        assert p.chain.in_flight == 2 and p.acked == []
        text = p.context.metrics.exposition()[0].decode()
        gauge = read_samples(text, "reviewpulse_batches_in_flight")
        assert gauge == {(): 2.0}
        gc.collect()
        alive = sum(type(o) is ClassifiedReview for o in gc.get_objects())
        assert alive <= 2 * size
        p.store.gates[0].set()
        await feeding
        await p.chain.drain()

    asyncio.run(scenario())
    assert p.stops == []
    assert p.acked == list(range(batches)) and p.stored() == list(range(batches))
    assert p.chain.window.high_water == 2
    metrics = p.context.metrics
    assert metrics.backpressure_seconds._value.get() > 0  # the agent did wait for room
    assert metrics.events_processed._value.get() == batches * size


def test_a_window_of_one_runs_one_batch_at_a_time(pipeline) -> None:
    p = pipeline(limit=1)
    p.store.gates[0] = threading.Event()

    async def scenario() -> None:
        first = asyncio.ensure_future(p.submit(0, batch(0)))
        await until(p.store.waiting.is_set, "batch 0's insert started")
        assert not first.done()  # submit returns only once batch 0 is acked
        p.store.gates[0].set()
        await first
        assert p.acked == [0]
        await p.submit(1, batch(1))
        await p.chain.drain()

    asyncio.run(scenario())
    assert p.acked == [0, 1] and p.chain.window.high_water == 1


def test_the_dlq_limit_tripping_in_the_next_batch_acks_nothing_in_flight(pipeline) -> None:
    p = pipeline(limit=3, dlq_limit_window=8, dlq_limit_ratio=0.5)
    p.store.gates[0] = threading.Event()

    async def scenario() -> None:
        await p.submit(0, batch(0, 4))
        with pytest.raises(Stopped):
            await p.submit(1, batch(1, 6, bad=6))  # 6 of the last 10 dead: the limit trips
        p.store.gates[0].set()  # batch 0 becomes durable after the stop: still not acked
        await until(lambda: 0 in p.stored(), "batch 0 stored")
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert [code for code, _ in p.stops] == [EXIT_DLQ_LIMIT]
    assert p.acked == []
    assert not [entry for entry in p.journal if entry[0] == "dlq"]  # batch 1 sent nothing


def test_cancelled_with_batches_in_flight_stops_without_acking(pipeline) -> None:
    p = pipeline(limit=3)
    p.store.gates[0] = threading.Event()

    async def scenario() -> None:
        await p.submit(0, batch(0))
        await p.submit(1, batch(1))
        waiting = asyncio.ensure_future(p.chain.drain())  # the agent, between batches
        await until(p.store.waiting.is_set, "batch 0's insert started")
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(Stopped):
            await waiting
        p.store.gates[0].set()  # the writes complete after the stop: still not acked
        await until(lambda: p.stored() == [0, 1], "both batches stored")
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    [(code, message)] = p.stops
    assert code == EXIT_INTERRUPTED and "2 batch(es) in flight" in message
    assert p.acked == []
    assert not p.marker.exists()  # a shutdown is not the input's fault


def test_a_suspect_goes_alone_with_nothing_else_in_flight(pipeline) -> None:
    """Batch 1 holds a message that was in hand at an earlier crash: it waits until batch 0
    is acked, then goes alone, with the marker naming only it."""
    p = pipeline(limit=3, crashes={(TOPIC, 1, 2): 1})
    p.store.gates[0] = threading.Event()
    seen: list[set[tuple[int, int]]] = []
    predict = p.model.predict_cleaned

    def watching(texts, cpu=None):
        seen.append(p.marked())
        return predict(texts)

    p.model.predict_cleaned = watching  # type: ignore[method-assign]

    async def scenario() -> None:
        await p.submit(0, batch(0))
        second = asyncio.ensure_future(p.submit(1, batch(1)))
        await until(p.store.waiting.is_set, "batch 0's insert started")
        for _ in range(10):
            await asyncio.sleep(0.01)
        assert len(p.model.calls) == 1  # batch 1 waits for batch 0 to land
        p.store.gates[0].set()
        await second
        await p.chain.drain()

    asyncio.run(scenario())
    assert p.stops == [] and p.acked == [0, 1]
    assert seen[1] == {(1, 2)}  # the suspect, alone
    assert seen[2] == {(1, 0), (1, 1), (1, 3)}  # then the rest of its batch
    assert not p.marker.exists()


def test_the_window_acks_in_order_and_fails_everything_after_a_failure() -> None:
    """The window on its own: flights that become durable out of order are acked in order;
    once one fails, neither it nor any later flight is acked, and new work is refused."""
    acked: list[str] = []

    def ack(name: str):
        async def run() -> None:
            acked.append(name)

        return run

    async def scenario() -> None:
        window = InflightWindow(4)
        gates = {name: asyncio.Event() for name in "abc"}

        async def durable(name: str) -> None:
            await gates[name].wait()

        for name in "abc":
            window.add(name, durable(name), ack(name))
        gates["c"].set()
        gates["b"].set()
        await asyncio.sleep(0.01)
        assert acked == [] and len(window) == 3
        gates["a"].set()
        await window.drain()
        assert acked == ["a", "b", "c"] and len(window) == 0

        async def fails() -> None:
            raise ConnectionError("sink down")

        later = asyncio.Event()
        window.add("d", fails(), ack("d"))
        window.add("e", durable_after(later), ack("e"))
        later.set()
        with pytest.raises(ConnectionError):
            await window.drain()
        with pytest.raises(ConnectionError):
            window.add("f", durable_after(later), ack("f"))
        with pytest.raises(ConnectionError):
            await window.wait_for_room()

    async def durable_after(event: asyncio.Event) -> None:
        await event.wait()

    asyncio.run(scenario())
    assert acked == ["a", "b", "c"]


def test_the_heartbeat_counts_the_oldest_batch_in_hand() -> None:
    now = [0.0]
    heartbeat = Heartbeat(clock=lambda: now[0])
    heartbeat.batch_started()
    now[0] = 5.0
    heartbeat.batch_started()  # pipelined: taken while the first is written
    now[0] = 7.0
    assert heartbeat.in_hand_s() == 7.0 and not heartbeat.idle.is_set()
    heartbeat.batch_done()  # the first is acked: the second is the oldest in hand
    assert heartbeat.in_hand_s() == 2.0 and not heartbeat.idle.is_set()
    assert heartbeat.idle_s() == 0.0
    heartbeat.batch_done()
    assert heartbeat.in_hand_s() == 0.0 and heartbeat.idle.is_set()
    assert heartbeat.batches_done == 2
