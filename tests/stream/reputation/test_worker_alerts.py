"""The real worker subprocess runs the alert timer and serves the report endpoints.

ClickHouse is filled with the scenario directly (the timer reads ClickHouse, however the
reviews got there), so the test does not wait for the model to classify thousands of
reviews. Needs the served model in ``model/registry`` because the worker loads it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from model.registry import resolve_model_dir
from stream.config import ModelConfig, WorkerConfig
from stream.kafka import ensure_topics
from stream.local.processes import free_port
from stream.metrics import read_samples, sample_total
from stream.sink.connection import connect
from stream.sink.migrations import migrate
from stream.sink.store import ReviewStore
from tests.stream.harness import WorkerProcess, read_topic, wait_for
from tests.stream.reputation.scenario import Scenario

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse, pytest.mark.slow]


def served_model_available(model: ModelConfig) -> bool:
    try:
        resolve_model_dir(model.model_registry, model.model_name, model.model_version)
    except FileNotFoundError:
        return False
    return True


def test_worker_timer_raises_alert_and_serves_reports(
    make_config: Callable[..., WorkerConfig], tmp_path: Path
) -> None:
    config = make_config(
        web_port=free_port(), alert_interval_s=1.0, topic_partitions=2, model_max_length=64
    )
    if not served_model_available(config.model):
        pytest.skip("no served model in model/registry (train one: reviewpulse train)")
    kafka = config.kafka
    ensure_topics(kafka, [kafka.input_topic, kafka.alerts_topic])
    ch = connect(config.clickhouse)
    migrate(ch)
    scenario = Scenario(now=datetime.now(UTC))
    store = ReviewStore(ch)
    store.write_reviews(scenario.steady_history())
    store.write_reviews(scenario.steady_window(skip={7}))
    store.write_reviews(scenario.turned_negative(7))
    store.write_reviews(scenario.newcomer())
    ch.close()

    worker = WorkerProcess(config, tmp_path / "worker.log").start()
    try:
        alerts: list = []

        def alert_arrived() -> bool:
            alerts[:] = read_topic(kafka.kafka_broker, kafka.alerts_topic, idle_s=0.5)
            return bool(alerts)

        wait_for(alert_arrived, timeout_s=90, what="an alert on the alerts topic", worker=worker)
        time.sleep(2.5)  # two more ticks: the open incident must not be raised again
        messages = read_topic(kafka.kafka_broker, kafka.alerts_topic, idle_s=1.0)
        assert [m.key() for m in messages] == [b"P007"]
        event = json.loads(messages[0].value())
        assert (event["kind"], event["subject"]) == ("negative_spike", "P007")
        assert event["figures"]["negative_ratio"] == 0.8

        status, body = worker.get_json("/reports/alerts")
        assert status == 200
        assert [(r["subject"], r["alert_id"]) for r in body["rows"]] == [
            ("P007", event["alert_id"])
        ]
        status, body = worker.get_json("/reports/products?period=1h&limit=3")
        assert status == 200
        assert body["rows"][0]["product_id"] == "P007"
        assert body["rows"][0]["negative_ratio"] == 0.8
        status, body = worker.get_json("/reports/complaints?hours=24")
        assert status == 200 and body["rows"][0]["product_id"] == "P007"
        status, body = worker.get_json("/reports/products?period=7d")
        assert status == 400 and "period" in body["error"]

        metrics = worker.metrics_text()
        raised = read_samples(metrics, "reviewpulse_alerts_raised_total")
        assert raised == {(("kind", "negative_spike"),): 1.0}
        assert sample_total(metrics, "reviewpulse_alert_evaluation_latency_seconds_count") >= 1
    finally:
        worker.stop()
