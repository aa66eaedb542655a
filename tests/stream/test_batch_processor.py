"""The batch body's rules, with fakes below the boundary it owns
(topics, store, model); the real-broker versions of these rules are in test_pipeline.py."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest

from stream.agents import BatchProcessor
from stream.app import EXIT_BATCH_ERROR, EXIT_DLQ_LIMIT, EXIT_SINK_DOWN, WorkerContext
from stream.keywords import Keywords
from stream.metrics import Metrics
from stream.settings import Settings


class Stopped(Exception):
    """Raised by the fake ``stop`` instead of ``os._exit``."""


@dataclass
class FakeMessage:
    value: bytes | None
    key: bytes | None = b"p-1"
    topic: str = "review.created"
    partition: int = 0
    offset: int = 0
    headers: list = field(default_factory=list)


@dataclass
class FakeEvent:
    message: FakeMessage


@dataclass(frozen=True)
class FakePrediction:
    label: str = "positive"
    confidence: float = 0.8
    probabilities: dict = field(
        default_factory=lambda: {"negative": 0.1, "neutral": 0.1, "positive": 0.8}
    )


class FakeModel:
    version = "fake-1"
    runtime = "fake"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict_batch(self, texts):
        self.calls.append(len(texts))
        return [FakePrediction() for _ in texts]


class FakeTopic:
    def __init__(self, name: str, journal: list, fail: int = 0) -> None:
        self.name, self.journal, self.fail = name, journal, fail

    async def send(self, *, key, value, headers, force):
        assert force, "must bypass Faust's attach-to-event (it would publish only at ack)"
        future = asyncio.get_running_loop().create_future()
        if self.fail:
            self.fail -= 1
            future.set_exception(ConnectionError("broker down"))
        else:
            self.journal.append((self.name, key, value))
            future.set_result(None)
        return future


class FakeStore:
    def __init__(self, journal: list, fail: int = 0) -> None:
        self.journal, self.fail = journal, fail

    def write_reviews(self, rows):
        if self.fail:
            self.fail -= 1
            raise ConnectionError("clickhouse down")
        self.journal.append(("clickhouse", len(rows)))
        return len(rows)


@pytest.fixture(scope="module")
def keywords() -> Keywords:
    return Keywords.load()


def review(i: int) -> bytes:
    return json.dumps(
        {
            "schema_version": 1,
            "review_id": f"r-{i}",
            "product_id": f"p-{i % 3}",
            "category": "手机",
            "user_id": "u",
            "text": "屏幕很好",
            "created_at": "2026-11-27T05:00:00Z",
        }
    ).encode()


def make(keywords, *, store_fail=0, topic_fail=0, **overrides):
    journal: list = []
    stops: list = []

    def stop(code: int, message: str):
        stops.append((code, message))
        raise Stopped(code)

    settings = Settings(sink_retry_attempts=3, sink_retry_backoff_s=0.01, **overrides)
    context = WorkerContext(
        settings=settings,
        model=FakeModel(),
        clickhouse=None,  # type: ignore[arg-type]  # not touched by the batch body
        store=FakeStore(journal, store_fail),
        keywords=keywords,
        metrics=Metrics(),
        stop=stop,
    )
    processor = BatchProcessor(
        context,
        output_topic=FakeTopic("out", journal, topic_fail),
        dlq_topic=FakeTopic("dlq", journal),
    )
    return processor, journal, stops, context


def events(values: list[bytes | None]) -> list[FakeEvent]:
    return [FakeEvent(FakeMessage(v, offset=i)) for i, v in enumerate(values)]


def run(processor, batch) -> None:
    asyncio.run(processor.process(batch))


def test_batch_dead_letters_and_one_model_call_for_the_valid_reviews(keywords) -> None:
    processor, journal, stops, context = make(keywords)
    run(processor, events([review(1), b"{broken", review(2), review(3)]))
    assert stops == []
    assert context.model.calls == [3]  # one call for the whole batch
    letters = [entry for entry in journal if entry[0] == "dlq"]
    assert [json.loads(v)["reason"] for _, _, v in letters] == ["malformed_json"]
    assert json.loads(letters[0][2])["offset"] == 1
    published = [entry for entry in journal if entry[0] == "out"]
    assert [json.loads(v)["review_id"] for _, _, v in published] == ["r-1", "r-2", "r-3"]
    assert [k for _, k, _ in published] == [b"p-1", b"p-2", b"p-0"]
    assert ("clickhouse", 3) in journal


def test_sink_recovering_within_the_retries_is_fine(keywords) -> None:
    processor, journal, stops, _ = make(keywords, store_fail=2, topic_fail=2)
    run(processor, events([review(1)]))
    assert stops == []
    assert ("clickhouse", 1) in journal
    assert processor.metrics.sink_retries.labels("clickhouse")._value.get() == 2


@pytest.mark.parametrize(("store_fail", "topic_fail"), [(3, 0), (0, 3)])
def test_sink_that_stays_down_stops_the_worker(keywords, store_fail, topic_fail) -> None:
    processor, _, stops, _ = make(keywords, store_fail=store_fail, topic_fail=topic_fail)
    with pytest.raises(Stopped):
        run(processor, events([review(1)]))
    assert stops[0][0] == EXIT_SINK_DOWN
    assert "without acking" in stops[0][1]


def test_dlq_limit_stops_before_anything_is_published(keywords) -> None:
    processor, journal, stops, _ = make(keywords, dlq_limit_window=4, dlq_limit_ratio=0.75)
    with pytest.raises(Stopped):
        run(processor, events([b"x", b"y", review(1), b"z"]))
    assert stops[0][0] == EXIT_DLQ_LIMIT
    assert journal == []


def test_unexpected_error_stops_instead_of_raising_into_take(keywords) -> None:
    processor, journal, stops, context = make(keywords)
    context.model.predict_batch = lambda texts: []  # wrong length: a bug, not a sink outage
    with pytest.raises(Stopped):
        run(processor, events([review(1)]))
    assert stops[-1][0] in (EXIT_SINK_DOWN, EXIT_BATCH_ERROR)
    assert not [entry for entry in journal if entry[0] in ("out", "clickhouse")]
