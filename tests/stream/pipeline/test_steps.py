"""Each step of the batch chain on its own, with fakes below it."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from stream.config import BatchConfig
from stream.keywords import Keywords
from stream.metrics import Metrics
from stream.pipeline.extraction import KeywordsOnThread
from stream.pipeline.inference import ModelOnThread
from stream.pipeline.steps import (
    Classify,
    DlqLimitExceeded,
    PublishDeadLetters,
    PublishSentiments,
    StoreRows,
    Validate,
)
from stream.serving.holder import ModelHolder
from tests.stream.pipeline.fakes import FakeModel, FakeSender, FakeStore, incoming, review_bytes

NOW = datetime(2026, 11, 27, 5, 0, 30, 500_000, tzinfo=UTC)


@pytest.fixture(scope="module")
def keywords() -> Keywords:
    return Keywords.load()


@pytest.fixture
def executor():
    with ThreadPoolExecutor(1) as pool:
        yield pool


def validate(**limits) -> Validate:
    return Validate(BatchConfig(**limits), Metrics(), clock=lambda: NOW)


def classify(keywords, executor, model=None, shadow=None) -> Classify:
    return Classify(
        ModelHolder(model or FakeModel(), follows_current=True),
        KeywordsOnThread(keywords, executor),
        run_model=ModelOnThread(executor),
        metrics=Metrics(),
        shadow=shadow,
        clock=lambda: NOW,
    )


def test_validate_sorts_valid_reviews_from_dead_letters_in_order() -> None:
    step = validate()
    batch = step(incoming([review_bytes(1), b"{", review_bytes(2, text="  ")]))
    assert [r.event.review_id for r in batch.valid] == ["r-1"]
    assert [(d.reason, d.offset, key) for d, key in batch.dead] == [
        ("malformed_json", 1, b"p-1"),
        ("empty_text", 2, b"p-1"),
    ]
    assert batch.dead[0][0].failed_at == "2026-11-27T05:00:30Z"
    assert step.metrics.dead_letter_share._value.get() == pytest.approx(2 / 3)


def test_validate_raises_once_the_dead_letter_limit_trips() -> None:
    step = validate(dlq_limit_window=4, dlq_limit_ratio=0.5)
    step(incoming([review_bytes(1), review_bytes(2)]))  # window not yet full: no verdict
    with pytest.raises(DlqLimitExceeded, match="limit 50%"):
        step(incoming([b"x", b"y"]))


def test_publish_dead_letters_sends_records_with_routing_headers() -> None:
    journal: list = []
    sent: list = []

    async def send(messages) -> None:
        sent.extend(messages)
        await FakeSender("dlq", journal)(messages)

    batch = validate()(incoming([b"not json"]))
    step = PublishDeadLetters(send, Metrics())
    asyncio.run(step(batch.dead))
    key, value, headers = sent[0]
    assert key == b"p-1"
    assert json.loads(value)["reason"] == "malformed_json"
    assert ("reviewpulse-dlq-reason", b"malformed_json") in headers
    assert step.metrics.events_dead_lettered.labels("malformed_json")._value.get() == 1


def test_classify_makes_one_model_call_and_keeps_review_order(keywords, executor) -> None:
    model = FakeModel()
    valid = validate()(incoming([review_bytes(i) for i in range(5)])).valid
    classified = asyncio.run(classify(keywords, executor, model)(valid))
    assert model.calls == [5]
    assert [c.review.event.review_id for c in classified] == [f"r-{i}" for i in range(5)]
    assert classified[0].probabilities == (0.1, 0.1, 0.8)
    assert classified[0].processed_at == NOW.replace(microsecond=0)
    assert classified[0].model_version == "fake-1"
    assert "屏幕" in classified[0].terms.keywords


def test_classify_offers_the_classified_batch_to_the_shadow_after_classifying(
    keywords, executor
) -> None:
    offered: list = []

    class Recorder:
        def offer(self, classified, served_seconds: float) -> None:
            offered.append((classified, served_seconds))

    valid = validate()(incoming([review_bytes(i) for i in range(3)])).valid
    classified = asyncio.run(classify(keywords, executor, shadow=Recorder())(valid))
    assert len(offered) == 1
    assert offered[0][0] == classified and offered[0][1] >= 0.0


def test_classify_rejects_a_model_that_loses_reviews(keywords, executor) -> None:
    model = FakeModel()
    model.predict_cleaned = lambda texts, cpu=None: []
    valid = validate()(incoming([review_bytes(1)])).valid
    with pytest.raises(ValueError, match="0 results for 1 texts"):
        asyncio.run(classify(keywords, executor, model)(valid))


def test_publish_and_store_write_one_output_per_review(keywords, executor) -> None:
    valid = validate()(incoming([review_bytes(i) for i in range(3)])).valid
    classified = asyncio.run(classify(keywords, executor)(valid))
    journal: list = []
    asyncio.run(
        PublishSentiments(FakeSender("out", journal), Metrics(), clock=lambda: NOW)(classified)
    )
    assert [json.loads(v)["review_id"] for _, _, v in journal] == ["r-0", "r-1", "r-2"]
    assert [k for _, k, _ in journal] == [b"p-0", b"p-1", b"p-2"]

    rows: list = []

    class Store(FakeStore):
        def write_reviews(self, batch, *, token=None):
            rows.extend(batch)
            return super().write_reviews(batch)

    metrics = Metrics()
    asyncio.run(StoreRows(Store(journal), executor, metrics)(classified))
    assert [row.review_id for row in rows] == ["r-0", "r-1", "r-2"]
    assert metrics.clickhouse_rows._value.get() == 3
