"""The last line of defence (issue 11): a message that keeps crashing the worker is
dead-lettered as ``poison`` after ``poison_crash_limit`` crashes, counted durably in
ClickHouse (both backends) across process restarts; stops that are not the input's fault
count nothing; and the dead-letter limit's window survives restarts."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stream.config import BatchConfig
from stream.keywords import Keywords
from stream.metrics import Metrics
from stream.pipeline.chain import BatchChain
from stream.pipeline.dlq_state import DlqWindowFile
from stream.pipeline.exits import EXIT_BATCH_ERROR, EXIT_DLQ_LIMIT, EXIT_SINK_DOWN
from stream.pipeline.extraction import KeywordsOnThread
from stream.pipeline.inference import ModelOnThread
from stream.pipeline.poison import (
    InflightMarker,
    PoisonGuard,
    describe_positions,
    triage_by_crashes,
)
from stream.pipeline.retry import Retrying, RetryPolicy
from stream.pipeline.steps import (
    Classify,
    DlqLimitExceeded,
    Incoming,
    PublishDeadLetters,
    PublishSentiments,
    StoreRows,
    Validate,
)
from stream.serving.holder import ModelHolder
from stream.sink.backend import ClickHouse
from stream.sink.crashes import CrashLedger
from tests.stream.pipeline.fakes import FakeModel, FakeSender, FakeStore, review_bytes

NOW = datetime(2026, 11, 27, 5, 0, 30, tzinfo=UTC)
POLICY = RetryPolicy(attempts=2, first_backoff_s=0.01, timeout_s=10)


class Stopped(Exception):
    pass


class BombModel(FakeModel):
    """Fails on one text whatever the batch, like an input that breaks the tokenizer."""

    def predict_cleaned(self, texts, cpu=None):
        if any("炸弹" in text for text in texts):
            raise RuntimeError("tokenizer crashed on this input")
        return super().predict_cleaned(texts)


@pytest.fixture(scope="module")
def keywords() -> Keywords:
    return Keywords.load()


class Worker:
    """One worker process's chain: a fresh guard over the same marker file and ledger."""

    def __init__(self, ch: ClickHouse, tmp: Path, keywords: Keywords, *, store_fail: int = 0):
        self.journal: list = []
        self.stops: list[tuple[int, str]] = []
        self.executor = ThreadPoolExecutor(1)
        metrics = Metrics()
        self.store = FakeStore(self.journal, store_fail)
        self.guard = PoisonGuard(
            CrashLedger(ch), InflightMarker(tmp / "inflight.json"), self.executor, limit=3
        )
        classify = Classify(
            ModelHolder(BombModel(), follows_current=True),
            KeywordsOnThread(keywords, self.executor),
            run_model=ModelOnThread(self.executor),
            metrics=metrics,
            clock=lambda: NOW,
        )
        self.chain = BatchChain(
            validate=Validate(BatchConfig(dlq_limit_ratio=1.0), metrics, clock=lambda: NOW),
            dead_letter=Retrying(
                "dead_letter", PublishDeadLetters(self.dlq, metrics), POLICY, metrics
            ),
            classify=Retrying("model", classify, POLICY, metrics),
            publish=Retrying(
                "produce",
                PublishSentiments(FakeSender("out", self.journal), metrics),
                POLICY,
                metrics,
            ),
            store=Retrying(
                "clickhouse", StoreRows(self.store, self.executor, metrics), POLICY, metrics
            ),
            metrics=metrics,
            stop=self.stop,
            poison=self.guard,
        )
        self.dead: list[dict] = []

    async def dlq(self, messages) -> None:
        self.dead.extend(json.loads(value) for _, value, _ in messages)

    def stop(self, code: int, message: str):
        self.stops.append((code, message))
        raise Stopped(code)

    def run(self, batch: list[Incoming]) -> int | None:
        """Process ``batch``; the exit code if the worker stopped, else None (acked)."""
        try:
            asyncio.run(self.chain.process(batch))
        except Stopped as stopped:
            return stopped.args[0]
        finally:
            self.executor.shutdown()
        return None

    def stored(self) -> int:
        return sum(entry[1] for entry in self.journal if entry[0] == "clickhouse")


def batch_with_bomb() -> list[Incoming]:
    values = [review_bytes(i) for i in range(5)]
    values.insert(3, review_bytes(99, text="这是炸弹评论"))
    return [Incoming("review.created", 2, 700 + i, b"p", value) for i, value in enumerate(values)]


@pytest.mark.clickhouse
def test_the_ledger_counts_each_dead_attempt_once(ch: ClickHouse) -> None:
    ledger = CrashLedger(ch)
    positions = [("t", 0, 5), ("t", 0, 6), ("t", 1, 5)]
    ledger.record(positions, attempt="a1", worker="w", crashed_at=NOW)
    ledger.record(positions[:1], attempt="a1", worker="w", crashed_at=NOW)  # recorded twice
    ledger.record(positions[:1], attempt="a2", worker="w2", crashed_at=NOW)
    assert ledger.counts([*positions, ("t", 2, 5), ("u", 0, 5)]) == {
        ("t", 0, 5): 2,
        ("t", 0, 6): 1,
        ("t", 1, 5): 1,
    }


@pytest.mark.clickhouse
def test_a_message_that_keeps_crashing_the_worker_becomes_poison(
    ch: ClickHouse, tmp_path: Path, keywords: Keywords, caplog: pytest.LogCaptureFixture
) -> None:
    batch = batch_with_bomb()
    # 1st process: the whole batch was in hand when it died.
    first = Worker(ch, tmp_path, keywords)
    assert first.run(batch) == EXIT_SINK_DOWN and first.stored() == 0
    assert "review.created[2]@700-705" in first.stops[0][1]
    # 2nd: every message is a suspect with one crash; they go in groups of ceil(sqrt(6)) = 3.
    # The first group gets through; the bomb's group dies (its 2nd crash, its neighbours' too).
    second = Worker(ch, tmp_path, keywords)
    assert second.run(batch) == EXIT_SINK_DOWN
    assert second.stored() == 3
    assert "review.created[2]@703-705" in second.stops[0][1]
    # 3rd: 703-705 have 2 crashes (limit - 1) and go alone, first: the bomb dies alone (its
    # 3rd crash), blaming nobody else.
    third = Worker(ch, tmp_path, keywords)
    assert third.run(batch) == EXIT_SINK_DOWN
    assert third.stored() == 0
    assert "review.created[2]@703" in third.stops[0][1]
    assert "review.created[2]@703-" not in third.stops[0][1]
    # 4th: the bomb has crashed 3 times: dead-lettered unread, the rest goes through.
    caplog.set_level(logging.ERROR, logger="stream.pipeline.poison")
    last = Worker(ch, tmp_path, keywords)
    assert last.run(batch) is None
    assert last.stored() == 5
    [record] = last.dead
    assert (record["reason"], record["topic"], record["partition"], record["offset"]) == (
        "poison",
        "review.created",
        2,
        703,
    )
    assert "3 times" in record["detail"] and "partition 2 offset 703" in record["detail"]
    assert "poison: review.created[2]@703 crashed the worker 3 times" in caplog.text
    assert not (tmp_path / "inflight.json").exists()


@pytest.mark.clickhouse
def test_a_sink_that_stays_down_counts_no_crash(
    ch: ClickHouse, tmp_path: Path, keywords: Keywords
) -> None:
    good = [Incoming("review.created", 0, i, b"p", review_bytes(i)) for i in range(4)]
    assert Worker(ch, tmp_path, keywords, store_fail=5).run(good) == EXIT_SINK_DOWN
    assert not (tmp_path / "inflight.json").exists()
    after = Worker(ch, tmp_path, keywords)
    assert after.run(good) is None and after.stored() == 4  # one batch, nobody suspected
    assert CrashLedger(ch).counts([("review.created", 0, i) for i in range(4)]) == {}


@pytest.mark.clickhouse
def test_an_unexpected_error_counts_a_crash_and_logs_the_positions(
    ch: ClickHouse, tmp_path: Path, keywords: Keywords, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(ch, tmp_path, keywords)

    def broken(messages, poison=None):
        raise KeyError("a bug in a step")

    worker.chain.validate = broken  # type: ignore[assignment]
    good = [Incoming("review.created", 1, 40 + i, b"p", review_bytes(i)) for i in range(2)]
    assert worker.run(good) == EXIT_BATCH_ERROR
    assert (
        "review.created[1]@40-41" in caplog.text and "review.created[1]@40-41" in worker.stops[0][1]
    )
    Worker(ch, tmp_path, keywords).run(good)
    assert CrashLedger(ch).counts([("review.created", 1, 40)]) == {("review.created", 1, 40): 1}


def test_without_crash_history_the_batch_goes_on(tmp_path: Path, keywords: Keywords) -> None:
    class Down:
        database = "x"
        cluster = ""

        def query(self, sql):
            raise ConnectionError("clickhouse down")

    worker = Worker(Down(), tmp_path, keywords)  # type: ignore[arg-type]
    batch = [Incoming("review.created", 0, i, b"p", review_bytes(i)) for i in range(3)]
    assert worker.run(batch) is None and worker.stored() == 3


def test_positions_are_described_per_partition() -> None:
    messages = [Incoming("t", p, o, None, b"") for p, o in [(1, 5), (0, 9), (1, 7), (0, 8)]]
    assert describe_positions(messages) == "t[0]@8-9,t[1]@5-7"


def test_the_dlq_limit_stays_tripped_across_restarts(tmp_path: Path) -> None:
    window = DlqWindowFile(tmp_path / "dlq.json")
    config = BatchConfig(dlq_limit_ratio=0.5, dlq_limit_window=10)
    bad = [Incoming("t", 0, i, None, b"{") for i in range(10)]
    good = [Incoming("t", 0, 10 + i, None, review_bytes(i)) for i in range(3)]
    with pytest.raises(DlqLimitExceeded, match="survives restarts"):
        Validate(config, Metrics(), clock=lambda: NOW, window=window)(bad)
    restarted = Validate(config, Metrics(), clock=lambda: NOW, window=window)
    assert restarted.limit.tripped
    with pytest.raises(DlqLimitExceeded, match=str(tmp_path / "dlq.json")):
        restarted(good)
    (tmp_path / "dlq.json").unlink()  # the operator's reset
    assert Validate(config, Metrics(), clock=lambda: NOW, window=window)(good).valid


def test_a_restart_continues_the_window_instead_of_starting_empty(tmp_path: Path) -> None:
    window = DlqWindowFile(tmp_path / "dlq.json")
    config = BatchConfig(dlq_limit_ratio=0.5, dlq_limit_window=10)
    mixed = [Incoming("t", 0, i, None, b"{" if i % 2 else review_bytes(i)) for i in range(8)]
    Validate(config, Metrics(), clock=lambda: NOW, window=window)(mixed)  # 4 of 8 bad
    restarted = Validate(config, Metrics(), clock=lambda: NOW, window=window)
    assert restarted.limit.outcomes() == [bool(i % 2) for i in range(8)]
    with pytest.raises(DlqLimitExceeded):
        restarted([Incoming("t", 0, 8, None, b"{"), Incoming("t", 0, 9, None, b"{")])


def test_a_damaged_window_file_counts_as_empty(tmp_path: Path) -> None:
    (tmp_path / "dlq.json").write_text("{not json")
    assert DlqWindowFile(tmp_path / "dlq.json").load() == []
    (tmp_path / "m.json").write_text("[]")
    assert InflightMarker(tmp_path / "m.json").read() is None


def test_dlq_limit_exit_code_is_unchanged() -> None:
    assert EXIT_DLQ_LIMIT == 71


def crashed(offsets: range) -> list[Incoming]:
    return [Incoming("review.created", 0, offset, b"p", b"{}") for offset in offsets]


def test_suspects_go_in_groups_of_about_the_square_root_while_a_crash_leaves_room() -> None:
    messages = crashed(range(100))
    counts = {("review.created", 0, offset): 1 for offset in range(10, 110)}  # 0-9: clean
    triage = triage_by_crashes(messages, counts, limit=3)
    *groups, rest = triage.parts
    assert len(triage.suspects) == 90 and triage.poison == {}
    assert [len(group) for group in groups] == [10] * 9  # ceil(sqrt(90)) = 10
    assert [m.offset for group in groups for m in group] == list(range(10, 100))  # take order
    assert [m.offset for m in rest] == list(range(10))


def test_a_suspect_one_crash_below_the_limit_goes_alone_and_one_at_it_is_poison() -> None:
    messages = crashed(range(6))
    counts = {("review.created", 0, 1): 2, ("review.created", 0, 2): 1, ("review.created", 0, 4): 3}
    triage = triage_by_crashes(messages, counts, limit=3)
    assert [[m.offset for m in part] for part in triage.parts] == [[1], [2], [0, 3, 4, 5]]
    assert len(triage.suspects) == 2
    assert triage.poison == {("review.created", 0, 4): 3}


def test_with_a_limit_of_two_every_suspect_goes_alone() -> None:
    """A group's crash would bring its members to the limit: no groups."""
    messages = crashed(range(5))
    counts = {("review.created", 0, offset): 1 for offset in range(5)}
    triage = triage_by_crashes(messages, counts, limit=2)
    assert [[m.offset for m in part] for part in triage.parts] == [[0], [1], [2], [3], [4]]


def test_a_bystander_of_a_crashed_group_never_reaches_the_limit() -> None:
    """Replays restarts: the batch is re-read whole each time (nothing of it was acked), and
    the bomb takes down whatever part holds it, one crash for each message of that part. The
    bomb becomes poison after exactly ``limit`` crashes, as if every suspect had gone alone,
    and no other message gets there."""
    for limit in (2, 3, 4, 5):
        messages = crashed(range(200))
        bomb = ("review.created", 0, 137)
        counts = {(m.topic, m.partition, m.offset): 1 for m in messages}  # all in hand at a crash
        crashes = 1
        while bomb not in (triage := triage_by_crashes(messages, counts, limit)).poison:
            [held] = [part for part in triage.parts if any(m.offset == 137 for m in part)]
            for message in held:
                counts[(message.topic, message.partition, message.offset)] += 1
            crashes += 1
        assert crashes == limit
        assert max(count for at, count in counts.items() if at != bomb) < limit, limit
