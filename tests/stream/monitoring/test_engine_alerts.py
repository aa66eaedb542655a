"""Model-health alerts through the alert engine, on the real Tansu broker and ClickHouse (18.16
and chdb 26.x): traffic of one category drifts away from the served model's card reference
and its ratings disagree, and the engine raises ``model_drift`` and ``feedback_drop`` for it
through its outbox table and the alerts topic, as two incidents that go on (not re-raised)
on later evaluations and after a restart; the rating-agreement gauge is refreshed on the same
timer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from model.labels import label_from_rating
from stream.config import ClickHouseConfig, WorkerConfig
from stream.kafka import ensure_topics
from stream.metrics import Metrics, read_samples
from stream.monitoring.health import ServedModel
from stream.reputation.alerts import PUBLISHED
from stream.reputation.engine import AlertEngine, Evaluation
from stream.reputation.incidents import incident_id
from stream.reputation.publisher import KafkaAlertPublisher
from stream.reputation.rules import AlertKind, SubjectType
from stream.rows import ReviewRow
from stream.sink.backend import ClickHouse
from stream.sink.store import ReviewStore
from tests.stream.harness import read_topic
from tests.stream.monitoring.test_queries import CONFIG, NOW, reference, scenario

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse]

MINUTE = timedelta(minutes=1)


@pytest.fixture(params=["native", "embedded"])
def config(
    request: pytest.FixtureRequest, make_config: Callable[..., WorkerConfig]
) -> WorkerConfig:
    config = make_config(topic_partitions=1, clickhouse_backend=request.param)
    ensure_topics(config.kafka, [config.kafka.alerts_topic])
    return config


def new_engine(config: WorkerConfig, ch: ClickHouse, **kwargs) -> AlertEngine:
    served = ServedModel("v1", reference())
    return AlertEngine(
        config.alerts,
        ch,
        KafkaAlertPublisher(config.kafka),
        monitor=CONFIG,
        served_model=lambda: served,
        **kwargs,
    )


def evaluate(engine: AlertEngine, at) -> Evaluation:
    return asyncio.run(engine.evaluate(at))


def test_drifted_traffic_raises_model_drift_and_feedback_drop_through_the_outbox(
    config: WorkerConfig, open_clickhouse: Callable[[ClickHouseConfig], ClickHouse]
) -> None:
    ch = open_clickhouse(config.clickhouse)
    rows: list[ReviewRow] = scenario()
    ReviewStore(ch).write_reviews(rows)
    metrics = Metrics()
    engine = new_engine(config, ch, metrics=metrics)

    result = evaluate(engine, NOW)
    at = result.plan.last
    assert at is not None
    health = [a for a in result.raised if a["kind"] in ("model_drift", "feedback_drop")]
    assert sorted((a["kind"], a["subject"]) for a in health) == [
        ("feedback_drop", "外卖"),
        ("model_drift", "外卖"),
    ]
    assert [a["subject"] for a in result.raised if a not in health] == []
    by_kind = {a["kind"]: a for a in health}
    for kind, alert in by_kind.items():
        # The tracker's id: kind, category and the event-time minute it was evaluated at.
        assert alert["alert_id"] == incident_id(SubjectType.CATEGORY, "外卖", at, AlertKind(kind))
        assert alert["window_end"] == (at + MINUTE).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert "model v1" in alert["message"]
        assert len(alert["sample_review_ids"]) == config.alerts.alert_sample_reviews
    drift, drop = by_kind["model_drift"], by_kind["feedback_drop"]
    assert drift["figures"]["neutral_share"] > drift["figures"]["reference_neutral_share"]
    assert drop["figures"]["drop"] >= CONFIG.monitor_feedback_drop
    window_ids = {r.review_id: r for r in rows if r.category == "外卖" and r.model_version == "v1"}
    for review_id in drop["sample_review_ids"]:
        row = window_ids[review_id]
        assert row.rating is not None and row.sentiment != label_from_rating(row.rating)
    assert set(drift["sample_review_ids"]) <= set(window_ids)

    # The outbox: published rows, the exact events on the topic keyed by the category.
    on_topic = [
        (m.key().decode(), json.loads(m.value()))
        for m in read_topic(config.kafka.kafka_broker, config.kafka.alerts_topic, idle_s=1.5)
    ]
    assert sorted(on_topic, key=lambda kv: kv[1]["kind"]) == [
        ("外卖", by_kind["feedback_drop"]),
        ("外卖", by_kind["model_drift"]),
    ]
    stored = ch.query(
        "SELECT argMax(kind, version), argMax(status, version) FROM alerts GROUP BY alert_id"
    )
    assert sorted(stored) == [("feedback_drop", PUBLISHED), ("model_drift", PUBLISHED)]
    assert metrics.alerts_raised.labels(kind="model_drift")._value.get() == 1
    assert metrics.alerts_raised.labels(kind="feedback_drop")._value.get() == 1
    assert engine.health()["model_health"] == {
        "model_version": "v1",
        "drift_reference": True,
        "findings": 2,
    }
    # The agreement gauge, per model version, on the same timer.
    gauge = read_samples(metrics.exposition()[0].decode(), "reviewpulse_rating_agreement")
    assert {labels[0][1] for labels in gauge} == {"v0", "v1"}

    # The incidents go on: not raised again, neither later nor by a restarted engine.
    ids = sorted(a["alert_id"] for a in health)
    again = evaluate(engine, NOW + timedelta(seconds=30))
    engine.close()
    assert again.raised == [] and again.continued == ids
    restarted = new_engine(config, open_clickhouse(config.clickhouse))
    after = evaluate(restarted, NOW + MINUTE)
    restarted.close()
    assert after.raised == [] and after.continued == ids
    assert len(read_topic(config.kafka.kafka_broker, config.kafka.alerts_topic, idle_s=1.5)) == 2
