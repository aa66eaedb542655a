"""The worker's web server end to end (real broker, ClickHouse server, model): readiness after
the group join, liveness, the per-partition lag gauge, the web token on /predict and
/reports/*, open probes, and /predict's body and text limits."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from model.corpus import SHIPPED_CORPUS
from stream.config import WorkerConfig
from stream.kafka import ensure_topics
from stream.metrics import read_samples
from stream.replay import EventFactory, cycle_sources, read_corpus
from tests.stream.harness import WorkerProcess, produce, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse]

TOKEN = "t0k3n-for-tests"


def call(
    worker: WorkerProcess, path: str, *, body: bytes | None = None, token: str | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(worker.url(path), data=body, method="POST" if body else "GET")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, OSError):
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def test_probes_token_and_limits(make_config: Callable[..., WorkerConfig], tmp_path: Path) -> None:
    config = make_config(
        web_token=TOKEN, lag_interval_s=1.0, predict_max_body_bytes=4096, predict_max_texts=4
    )
    ensure_topics(config.kafka)
    factory = EventFactory(seed=3, id_prefix="hw", malformed_share=0.0)
    sources = cycle_sources(read_corpus(SHIPPED_CORPUS), 3)
    produce(config.kafka, [factory.make(next(sources), datetime.now(UTC)) for _ in range(200)])
    with WorkerProcess(config, tmp_path / "worker.log") as worker:
        wait_for(
            lambda: call(worker, "/health/live")[0] == 200,
            timeout_s=120,
            what="live",
            worker=worker,
        )
        wait_for(
            lambda: call(worker, "/health/ready")[0] == 200,
            timeout_s=60,
            what="ready",
            worker=worker,
        )
        status, ready = call(worker, "/health/ready")
        assert len(ready["assigned_partitions"]) == config.kafka.topic_partitions
        assert ready["broker"]["status"] == ready["clickhouse"]["status"] == "ok"
        assert ready["startup"]["status"] == "ok"  # model, jieba, ClickHouse prepared
        # "model-process": the model's child process has loaded it too (model-executor).
        parts = {"clickhouse", "model", "model-process", "keywords"}
        assert set(ready["startup"]["parts"]) == parts

        def lag_gauges() -> dict:
            text = worker.metrics_text()
            return read_samples(text, "reviewpulse_consumer_lag_messages")

        wait_for(
            lambda: len(lag_gauges()) == config.kafka.topic_partitions,
            timeout_s=30,
            what="a lag gauge per partition",
            worker=worker,
        )
        processed = "reviewpulse_events_processed_total"
        wait_for(
            lambda: sum(read_samples(worker.metrics_text(), processed).values()) >= 200,
            timeout_s=120,
            what="the backlog",
            worker=worker,
        )
        wait_for(lambda: sum(lag_gauges().values()) == 0, timeout_s=30, what="lag 0", worker=worker)
        assert {dict(k)["partition"] for k in lag_gauges()} == {
            str(p) for p in range(config.kafka.topic_partitions)
        }

        # Probes are open; /predict and /reports/* need the token.
        assert call(worker, "/health")[0] == 200
        body = json.dumps({"texts": ["质量很差，漏水了", "很好用"]}).encode()
        assert call(worker, "/predict", body=body)[0] == 401
        assert call(worker, "/predict", body=body, token="wrong")[0] == 401
        status, answer = call(worker, "/predict", body=body, token=TOKEN)
        assert status == 200, answer
        assert [p["label"] for p in answer["predictions"]] == ["negative", "positive"]
        assert call(worker, "/reports/alerts")[0] == 401
        assert call(worker, "/reports/alerts", token=TOKEN)[0] == 200
        status, error = call(worker, "/reports/complaints?hours=720", token=TOKEN)
        assert status == 400 and "between 1 and 168" in error["error"]

        # Limits: body size (413), text count (400).
        huge = json.dumps({"texts": ["好" * 3000]}).encode()
        status, error = call(worker, "/predict", body=huge, token=TOKEN)
        assert status == 413, error
        five = json.dumps({"texts": ["好"] * 5}).encode()
        assert call(worker, "/predict", body=five, token=TOKEN)[0] == 400
        outcomes = read_samples(worker.metrics_text(), "reviewpulse_predict_requests_total")
        assert outcomes[(("outcome", "too_large"),)] == 1
        assert outcomes[(("outcome", "ok"),)] == 1
        assert call(worker, "/health/live")[1]["batches_done"] >= 1
