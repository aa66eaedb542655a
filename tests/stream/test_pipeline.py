"""End to end on the real broker and real ClickHouse: the worker runs as a subprocess.

Covers: 5,000 replayed events with ~5% malformed ones (exactly once in ClickHouse, at least
once on the output topic, every malformed one dead-lettered with its reason, per-minute
aggregates exact); kill -9 mid-stream and restart; a sink that stays down (hard stop without
commit, then recovery); the DLQ limit; and the same flow on the embedded chdb backend.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import schemas
from model.corpus import SHIPPED_CORPUS
from model.text import clean_text
from stream.config import KafkaConfig, WorkerConfig
from stream.local.processes import free_port
from stream.metrics import sample_total
from stream.pipeline.exits import EXIT_DLQ_LIMIT, EXIT_SINK_DOWN
from stream.replay import MALFORMED_KINDS, EventFactory, ReplayEvent, cycle_sources, read_corpus
from stream.sink.connection import connect
from tests.stream.harness import (
    WorkerProcess,
    committed_total,
    produce,
    read_topic,
    wait_for,
)

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse, pytest.mark.slow]

SOURCES = read_corpus(SHIPPED_CORPUS)
FAST = {
    "batch_size": 128,
    "batch_within_s": 0.2,
    "commit_interval_s": 0.5,
    "model_max_length": 64,
    "sink_retry_attempts": 3,
    "sink_retry_backoff_s": 0.2,
    "dlq_limit_window": 500,
}


@dataclass
class Replay:
    events: list[ReplayEvent]

    @property
    def valid(self) -> list[ReplayEvent]:
        return [e for e in self.events if e.expected_reason is None]

    @property
    def malformed(self) -> list[ReplayEvent]:
        return [e for e in self.events if e.expected_reason is not None]


def make_replay(count: int, *, seed: int, config: WorkerConfig, malformed: float) -> Replay:
    """``count`` events, created_at 0.5 s apart over the last hour(s), ~``malformed`` bad."""
    factory = EventFactory(
        seed=seed,
        id_prefix=f"t{seed}",
        malformed_share=malformed,
        max_text_chars=config.batch.max_text_chars,
        max_event_bytes=config.batch.max_event_bytes,
    )
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    sources = cycle_sources(SOURCES, seed)
    events = [factory.make(next(sources), start + timedelta(seconds=i / 2)) for i in range(count)]
    return Replay(events)


def worker_config(make_config: Callable[..., WorkerConfig], **overrides) -> WorkerConfig:
    return make_config(web_port=free_port(), **{**FAST, **overrides})


def reviews_in_clickhouse(config: WorkerConfig) -> Callable[[], int]:
    ch = connect(config.clickhouse)

    def count() -> int:
        try:
            return ch.query("SELECT count() FROM reviews FINAL")[0][0]
        except Exception:  # table not migrated yet
            return 0

    return count


def dead_letters(config: WorkerConfig) -> list[dict]:
    letters = []
    for message in read_topic(config.kafka.kafka_broker, config.kafka.dlq_topic):
        payload = json.loads(message.value())
        errors = list(schemas.validator("dead_letter", 1).iter_errors(payload))
        assert errors == [], errors
        headers = dict(message.headers() or [])
        assert headers["reviewpulse-dlq-reason"].decode() == payload["reason"]
        assert int(headers["reviewpulse-dlq-offset"]) == payload["offset"]
        letters.append(payload)
    return letters


def sentiment_events(config: WorkerConfig) -> list[dict]:
    events = []
    validator = schemas.validator("review_sentiment", 1)
    for message in read_topic(config.kafka.kafka_broker, config.kafka.output_topic):
        payload = json.loads(message.value())
        assert not list(validator.iter_errors(payload))
        assert message.key().decode() == payload["product_id"]
        events.append(payload)
    return events


def counters_reached(worker: WorkerProcess, replay: Replay) -> Callable[[], bool]:
    """True once the worker's /metrics count every event consumed, every valid one processed
    and every malformed one dead-lettered (the counters move just after the rows are stored:
    poll them, do not read them once)."""
    want = {
        "consumed": len(replay.events),
        "processed": len(replay.valid),
        "dead_lettered": len(replay.malformed),
    }

    def reached() -> bool:
        try:
            text = worker.metrics_text()
        except OSError:
            return False
        return all(
            sample_total(text, f"reviewpulse_events_{kind}_total") == count
            for kind, count in want.items()
        )

    return reached


def check_outcome(config: WorkerConfig, replay: Replay, rows: Callable[[str], list[tuple]]) -> None:
    """Every valid review once in ClickHouse, at least once on the topic, every malformed
    one dead-lettered with its reason, and the per-minute aggregates exact."""
    valid_ids = {e.review_id for e in replay.valid}
    stored = rows("SELECT review_id, product_id, sentiment FROM reviews FINAL")
    stored_ids = [row[0] for row in stored]
    assert len(stored_ids) == len(set(stored_ids)) == len(valid_ids)
    assert set(stored_ids) == valid_ids
    assert rows("SELECT count() FROM reviews")[0][0] >= len(valid_ids)

    with_keywords, with_complaints = rows(
        "SELECT countIf(length(keywords) > 0), countIf(length(complaint_keywords) > 0) "
        "FROM reviews FINAL"
    )[0]
    assert with_keywords > 0.9 * len(valid_ids) and with_complaints > 0
    sample = replay.valid[:: max(1, len(replay.valid) // 20)]
    quoted = ", ".join(f"'{e.review_id}'" for e in sample)
    stored_rows = {
        row[0]: row[1:]
        for row in rows(
            "SELECT review_id, product_id, category, user_id, rating, text, "
            f"toString(created_at) FROM reviews FINAL WHERE review_id IN ({quoted})"
        )
    }
    for event in sample:  # the row carries the input's fields, text cleaned
        sent = json.loads(event.value)
        when = datetime.fromisoformat(sent["created_at"]).strftime("%Y-%m-%d %H:%M:%S")
        expect = (sent["product_id"], sent["category"], sent["user_id"], sent.get("rating"))
        assert stored_rows[event.review_id] == (*expect, clean_text(sent["text"]), when)

    published = sentiment_events(config)
    assert len(published) >= len(valid_ids)
    by_id = {event["review_id"]: event for event in published}
    assert set(by_id) == valid_ids
    stored_sentiment = {row[0]: str(row[2]) for row in stored}
    assert all(by_id[rid]["sentiment"] == stored_sentiment[rid] for rid in valid_ids)

    letters = dead_letters(config)
    expected = {hashlib.sha256(e.value).hexdigest(): e for e in replay.malformed}
    seen = {}
    for letter in letters:
        digest = hashlib.sha256(base64.b64decode(letter["value_b64"])).hexdigest()
        assert digest in expected, "a valid event was dead-lettered"
        seen[digest] = letter["reason"]
    assert set(seen) == set(expected)
    assert {d: expected[d].expected_reason for d in seen} == seen
    if len(replay.malformed) >= len(MALFORMED_KINDS):  # every kind of bad input was tried
        assert {e.expected_reason for e in replay.malformed} == set(MALFORMED_KINDS)

    # per product and minute, by sentiment: counts from the input + the model's labels
    want: Counter = Counter()
    for event in replay.valid:
        created = datetime.fromisoformat(event.created_at).replace(second=0)
        minute = created.strftime("%Y-%m-%d %H:%M:%S")
        want[(minute, event.product_id, by_id[event.review_id]["sentiment"])] += 1
    got = {
        (str(minute), product, str(sentiment)): count
        for minute, product, sentiment, count in rows(
            "SELECT toString(minute), product_id, toString(sentiment), uniqExactMerge(reviews) "
            "FROM sentiment_minute GROUP BY minute, product_id, sentiment"
        )
    }
    assert got == dict(want)


def test_end_to_end_native(make_config, tmp_path: Path) -> None:
    config = worker_config(make_config)
    replay = make_replay(5000, seed=1, config=config, malformed=0.05)
    assert 150 < len(replay.malformed) < 350
    produce(config.kafka, replay.events)
    worker = WorkerProcess(config, tmp_path / "worker.log").start()
    try:
        stored = reviews_in_clickhouse(config)
        wait_for(
            lambda: stored() >= len(replay.valid),
            timeout_s=240,
            what="all valid reviews in ClickHouse",
            worker=worker,
        )
        status, health = worker.get_json("/health")
        assert status == 200, health
        assert health["model"]["version"]
        assert len(health["broker"]["assigned_partitions"]) == config.kafka.topic_partitions
        status, answer = worker.post_json("/predict", {"texts": ["质量很差，漏水了", "很好用"]})
        assert status == 200, answer
        assert [p["label"] for p in answer["predictions"]] == ["negative", "positive"]
        assert worker.post_json("/predict", {"texts": []})[0] == 400
        wait_for(counters_reached(worker, replay), timeout_s=60, what="the counters", worker=worker)
        metrics = worker.metrics_text()
        assert 'reviewpulse_events_dead_lettered_total{reason="text_too_long"}' in metrics
        assert "reviewpulse_model_info{" in metrics
        assert worker.stop() == 0
    finally:
        if worker.alive():
            worker.kill9()
    ch = connect(config.clickhouse)
    check_outcome(config, replay, ch.query)


def test_kill_9_mid_stream_loses_nothing(make_config, tmp_path: Path) -> None:
    config = worker_config(make_config, batch_size=32)
    replay = make_replay(3000, seed=2, config=config, malformed=0.05)
    stored = reviews_in_clickhouse(config)
    log = tmp_path / "worker.log"
    feeder = threading.Thread(target=_produce_slowly, args=(config.kafka, replay.events, 4.0))
    first = WorkerProcess(config, log).start()
    second = WorkerProcess(config, log)
    try:
        feeder.start()
        wait_for(lambda: stored() >= 600, timeout_s=180, what="600 rows", worker=first)
        first.kill9()  # mid-stream: the feeder is still producing
        killed_at = stored()
        assert killed_at < len(replay.valid)
        second.start()
        feeder.join(timeout=120)
        wait_for(
            lambda: stored() >= len(replay.valid),
            timeout_s=240,
            what="all valid reviews after the restart",
            worker=second,
        )
        assert second.stop() == 0
    finally:
        for worker in (first, second):
            if worker.alive():
                worker.kill9()
    check_outcome(config, replay, connect(config.clickhouse).query)


def _produce_slowly(kafka: KafkaConfig, events: list[ReplayEvent], seconds: float) -> None:
    chunks = 20
    size = len(events) // chunks + 1
    for i in range(chunks):
        produce(kafka, events[i * size : (i + 1) * size])
        time.sleep(seconds / chunks)


def test_sink_down_stops_worker_without_commit_then_recovers(make_config, tmp_path) -> None:
    config = worker_config(make_config)
    first_part = make_replay(300, seed=3, config=config, malformed=0.0)
    second_part = make_replay(200, seed=4, config=config, malformed=0.0)
    produce(config.kafka, first_part.events)
    stored = reviews_in_clickhouse(config)
    log = tmp_path / "worker.log"
    worker = WorkerProcess(config, log).start()
    try:
        wait_for(lambda: stored() == 300, timeout_s=180, what="first 300 rows", worker=worker)
        wait_for(lambda: committed_total(config.kafka) == 300, timeout_s=30, what="commit of 300")
        ch = connect(config.clickhouse)
        ch.execute("RENAME TABLE reviews TO reviews_parked")  # the sink is now broken
        produce(config.kafka, second_part.events)
        assert worker.wait_exit(timeout_s=120) == EXIT_SINK_DOWN
        assert "stopping without acking the batch" in log.read_text()
        assert committed_total(config.kafka) == 300  # nothing of the failed batch committed
        ch.execute("RENAME TABLE reviews_parked TO reviews")
        worker = WorkerProcess(config, log).start()
        wait_for(lambda: stored() == 500, timeout_s=180, what="all 500 rows", worker=worker)
        wait_for(lambda: committed_total(config.kafka) == 500, timeout_s=30, what="commit of 500")
        assert worker.stop() == 0
    finally:
        if worker.alive():
            worker.kill9()
    check_outcome(config, Replay(first_part.events + second_part.events), ch.query)


def test_dlq_limit_stops_worker_without_commit(make_config, tmp_path: Path) -> None:
    config = worker_config(make_config, dlq_limit_window=40, dlq_limit_ratio=0.9)
    bad = make_replay(60, seed=5, config=config, malformed=1.0)
    produce(config.kafka, bad.events)
    worker = WorkerProcess(config, tmp_path / "worker.log").start()
    try:
        assert worker.wait_exit(timeout_s=120) == EXIT_DLQ_LIMIT
        assert "DLQ limit" in worker.log_tail()
        assert committed_total(config.kafka) < 60
    finally:
        if worker.alive():
            worker.kill9()


def test_end_to_end_embedded_chdb(make_config, tmp_path: Path) -> None:
    config = worker_config(make_config, clickhouse_backend="embedded")
    replay = make_replay(2000, seed=6, config=config, malformed=0.05)
    produce(config.kafka, replay.events)
    worker = WorkerProcess(config, tmp_path / "worker.log").start()
    try:
        # the worker owns the chdb directory: watch its metrics, read the data afterwards
        wait_for(
            counters_reached(worker, replay),
            timeout_s=240,
            what="all events processed",
            worker=worker,
        )
        assert worker.stop() == 0
    finally:
        if worker.alive():
            worker.kill9()
    ch = connect(config.clickhouse)
    try:
        check_outcome(config, replay, ch.query)
    finally:
        ch.close()
