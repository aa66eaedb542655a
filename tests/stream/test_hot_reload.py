"""Hot reload and shadow scoring end to end: the real worker as a subprocess, the real broker
and ClickHouse, a stream that keeps flowing while the registry's pointers move.

While events arrive, CURRENT moves from v1 to v2 (swapped in between batches), then to v3,
whose model file is truncated (refused: v2 keeps serving, /health and the metrics say so),
and a shadow of v1 starts (scored on its own thread into shadow_predictions). Nothing is
lost, every review carries exactly one version on the topic and in ClickHouse, and versions
change once, at a batch boundary. The embedded backend runs the shadow through its own chdb
session in the worker process.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from model.registry import set_current, start_shadow
from stream.cli import main
from stream.config import KafkaConfig, WorkerConfig, config_flags
from stream.metrics import read_samples
from stream.replay import ReplayEvent
from stream.serving.shadow import in_share
from stream.sink.connection import connect
from tests.stream.harness import WorkerProcess, produce, read_topic, wait_for
from tests.stream.serving.registry import NAME, publish_broken, publish_copy
from tests.stream.test_pipeline import (
    check_outcome,
    make_replay,
    reviews_in_clickhouse,
    sentiment_events,
    worker_config,
)

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse, pytest.mark.slow]


def feed(kafka: KafkaConfig, events: list[ReplayEvent], *, seconds: float) -> threading.Thread:
    """Produce ``events`` evenly over ``seconds`` on a thread (the stream keeps flowing)."""

    def run() -> None:
        chunks = 60
        size = len(events) // chunks + 1
        for i in range(chunks):
            produce(kafka, events[i * size : (i + 1) * size])
            time.sleep(seconds / chunks)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def health(worker: WorkerProcess) -> dict:
    status, body = worker.get_json("/health")
    assert status == 200, body  # the old model serves: still healthy
    return body["model"]


def started(worker: WorkerProcess) -> bool:
    """The worker answers and its start-up (model, jieba, ClickHouse) is done: before that,
    /health is 503 with the model "starting"."""
    try:
        _, body = worker.get_json("/health")
    except OSError:
        return False
    return body.get("startup", {}).get("status") == "ok"


def serving(worker: WorkerProcess, version: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return health(worker)["version"] == version
        except OSError:
            return False

    return check


def registry_with_three_versions(tmp_path: Path) -> Path:
    registry = tmp_path / "registry"
    registry.mkdir()
    publish_copy(registry, "v1", make_current=True)
    publish_copy(registry, "v2")
    publish_broken(registry, "v3", how="truncated")
    return registry


def test_current_moves_under_load_and_a_broken_version_is_refused(
    make_config: Callable[..., WorkerConfig], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    registry = registry_with_three_versions(tmp_path)
    config = worker_config(
        make_config, model_registry=registry, model_reload_interval_s=0.5, batch_size=64
    )
    replay = make_replay(2400, seed=21, config=config, malformed=0.02)
    stored = reviews_in_clickhouse(config)
    worker = WorkerProcess(config, tmp_path / "worker.log").start()
    feeder = feed(config.kafka, replay.events, seconds=30)
    try:
        wait_for(lambda: stored() >= 300, timeout_s=180, what="300 rows by v1", worker=worker)
        assert health(worker)["version"] == "v1"
        set_current(registry, NAME, "v2")
        wait_for(serving(worker, "v2"), timeout_s=60, what="v2 served", worker=worker)
        at_swap = stored()
        assert at_swap < len(replay.valid), "the stream ended before the swap"

        set_current(registry, NAME, "v3")  # truncated model file
        wait_for(
            lambda: (health(worker)["refused"] or {}).get("version") == "v3",
            timeout_s=60,
            what="v3 refused",
            worker=worker,
        )
        model = health(worker)
        assert model["version"] == "v2" and model["follows"] == "current"
        assert "cannot load" in model["refused"]["reason"]
        metrics = worker.metrics_text()
        reloads = read_samples(metrics, "reviewpulse_model_reloads_total")
        assert reloads[(("outcome", "loaded"), ("role", "served"))] == 1
        assert reloads[(("outcome", "refused"), ("role", "served"))] == 1
        (info,) = read_samples(metrics, "reviewpulse_model_info")
        assert dict(info)["version"] == "v2"

        start_shadow(registry, NAME, "v1", 0.5)  # the same network as v2: they must agree
        wait_for(
            lambda: (health(worker)["shadow"] or {}).get("status") == "ok",
            timeout_s=60,
            what="the shadow running",
            worker=worker,
        )
        at_shadow = stored()
        assert at_shadow < len(replay.valid), "the stream ended before the shadow started"
        feeder.join(timeout=120)
        wait_for(
            lambda: stored() >= len(replay.valid),
            timeout_s=180,
            what="all valid reviews",
            worker=worker,
        )
        wait_for(
            lambda: health(worker)["shadow"]["queued_batches"] == 0,
            timeout_s=60,
            what="the shadow queue drained",
            worker=worker,
        )
        shadow_health = health(worker)["shadow"]
        assert shadow_health["failed_reviews"] == 0 and shadow_health["scored_reviews"] > 0
        assert worker.stop() == 0
    finally:
        if worker.alive():
            worker.kill9()
    ch = connect(config.clickhouse)
    check_outcome(config, replay, ch.query)  # nothing lost, each review once

    # Every review carries exactly one version, the same on the topic and in ClickHouse.
    rows = ch.query("SELECT review_id, model_version, processed_at FROM reviews FINAL")
    row_version = {review_id: version for review_id, version, _ in rows}
    topic_versions: dict[str, set[str]] = defaultdict(set)
    for event in sentiment_events(config):
        topic_versions[event["review_id"]].add(event["model_version"])
    assert {rid: {v} for rid, v in row_version.items()} == dict(topic_versions)
    counts = {v: sum(1 for x in row_version.values() if x == v) for v in ("v1", "v2")}
    assert set(row_version.values()) == {"v1", "v2"} and counts["v1"] >= 300, counts
    # At most the one batch in flight when v2 was seen serving was still v1's.
    assert counts["v1"] <= at_swap + config.batch.batch_size, (counts, at_swap)

    # Versions change once, between batches: per input partition, in offset order, every v1
    # review comes before every v2 review, and no v1 review was classified after a v2 one.
    by_partition: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for message in read_topic(config.kafka.kafka_broker, config.kafka.input_topic):
        try:
            review_id = json.loads(message.value())["review_id"]
        except (ValueError, KeyError, TypeError):
            continue  # a malformed event: dead-lettered, no version
        if review_id in row_version:
            by_partition[message.partition()].append((message.offset(), row_version[review_id]))
    for partition, seen in by_partition.items():
        versions = [version for _, version in sorted(seen)]
        assert versions == sorted(versions), f"partition {partition} went back to v1"
    last_v1 = max(at for _, version, at in rows if version == "v1")
    first_v2 = min(at for _, version, at in rows if version == "v2")
    assert last_v1 <= first_v2

    # The shadow: its share of the reviews classified by v2 after it started, scored by v1.
    shadow_rows = ch.query(
        "SELECT review_id, served_version, toString(served_sentiment), "
        "toString(candidate_sentiment) FROM shadow_predictions FINAL "
        "WHERE candidate_version = 'v1'"
    )
    assert len(shadow_rows) >= 0.3 * (len(replay.valid) - at_shadow)
    assert all(in_share(review_id, 0.5) for review_id, *_ in shadow_rows)
    assert all(row_version[review_id] == "v2" for review_id, *_ in shadow_rows)
    assert {served for _, served, _, _ in shadow_rows} == {"v2"}
    ch.close()
    capsys.readouterr()
    flags = ["--model-registry", str(registry), "--served", "v2", *config_flags(config.clickhouse)]
    assert main(["shadow", "status", "--json", *flags]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["reviews"] == len(shadow_rows) and status["rated"] > 0
    # The same network (forwards grouped differently may move a label at a band's edge).
    assert status["agreement"] >= 0.99
    candidate, served = status["candidate"], status["served"]
    assert abs(candidate["rating_agreement"] - served["rating_agreement"]) <= 0.01


def test_shadow_on_the_embedded_backend(
    make_config: Callable[..., WorkerConfig], tmp_path: Path
) -> None:
    registry = registry_with_three_versions(tmp_path)
    start_shadow(registry, NAME, "v2", 1.0)  # running before the worker starts
    config = worker_config(
        make_config,
        model_registry=registry,
        model_reload_interval_s=0.5,
        clickhouse_backend="embedded",
    )
    replay = make_replay(600, seed=22, config=config, malformed=0.0)
    produce(config.kafka, replay.events)
    worker = WorkerProcess(config, tmp_path / "worker.log").start()
    try:
        wait_for(lambda: started(worker), timeout_s=120, what="start-up", worker=worker)

        def shadow() -> dict:
            try:
                return health(worker)["shadow"] or {}
            except OSError:
                return {}

        def done() -> bool:
            counts = shadow()
            outcomes = ("scored", "dropped", "expired", "failed")
            return sum(counts.get(f"{o}_reviews", 0) for o in outcomes) == len(replay.valid)

        wait_for(done, timeout_s=240, what="every review through the shadow", worker=worker)
        # The shadow ran from the first batch (SHADOW was there before the worker started).
        assert shadow()["scored_reviews"] == len(replay.valid), shadow()
        assert worker.stop() == 0
    finally:
        if worker.alive():
            worker.kill9()
    ch = connect(config.clickhouse)
    try:
        check_outcome(config, replay, ch.query)
        ((rows, reviews, same),) = ch.query(
            "SELECT count(), uniqExact(review_id), countIf(served_sentiment = "
            "candidate_sentiment) FROM shadow_predictions FINAL WHERE candidate_version = 'v2' "
            "AND served_version = 'v1'"
        )
        assert rows == reviews == len(replay.valid)
        assert same >= 0.99 * rows  # the same network
    finally:
        ch.close()
