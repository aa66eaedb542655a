"""The alert engine against the real Tansu broker and the real ClickHouse 18.16 server.

The engine is driven directly (``AlertEngine.evaluate``), one call per evaluation interval,
so "within two evaluation intervals" is "by the second evaluation" and nothing is timed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from stream.config import ClickHouseConfig, KafkaConfig, WorkerConfig
from stream.kafka import DeliveryError, ensure_topics
from stream.local.processes import free_port
from stream.metrics import Metrics
from stream.reputation.alerts import PENDING, PUBLISHED
from stream.reputation.engine import AlertEngine
from stream.reputation.publisher import KafkaAlertPublisher
from stream.sink.backend import ClickHouse
from stream.sink.store import ReviewStore
from tests.stream.harness import read_topic
from tests.stream.reputation.scenario import Scenario

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse]

TURNED = 7  # the product whose reviews turn negative


def alerts_on_topic(kafka: KafkaConfig) -> list[tuple[str, dict]]:
    return [
        (m.key().decode(), json.loads(m.value()))
        for m in read_topic(kafka.kafka_broker, kafka.alerts_topic, idle_s=1.5)
    ]


def alerts_in_table(ch: ClickHouse) -> list[tuple]:
    return ch.query(
        "SELECT alert_id, kind, subject, status, raised_at, last_seen_at "
        "FROM alerts FINAL ORDER BY raised_at, alert_id"
    )


def evaluate(engine: AlertEngine):
    return asyncio.run(engine.evaluate())


def new_engine(config: WorkerConfig, ch: ClickHouse, metrics: Metrics | None = None) -> AlertEngine:
    return AlertEngine(config.alerts, ch, KafkaAlertPublisher(config.kafka), metrics=metrics)


@pytest.fixture(params=["native", "embedded"])
def config(
    request: pytest.FixtureRequest, make_config: Callable[..., WorkerConfig]
) -> WorkerConfig:
    """ClickHouse 18.16 server and chdb 26.x; a fresh alerts topic on the Tansu broker."""
    config = make_config(alert_interval_s=1.0, topic_partitions=2, clickhouse_backend=request.param)
    ensure_topics(config.kafka, [config.kafka.alerts_topic])
    return config


def test_one_product_turns_negative(
    config: WorkerConfig, open_clickhouse: Callable[[ClickHouseConfig], ClickHouse]
) -> None:
    ch = open_clickhouse(config.clickhouse)
    store = ReviewStore(ch)
    scenario = Scenario(now=datetime.now(UTC))
    store.write_reviews(scenario.steady_history())
    store.write_reviews(scenario.steady_window(skip={TURNED}))
    metrics = Metrics()
    engine = new_engine(config, ch, metrics)

    steady = evaluate(engine)
    assert steady.raised == [] and steady.findings == 0

    # Product 7 turns mostly negative with complaint words; a new product gets 3 negative
    # complaint reviews and has no history.
    store.write_reviews(scenario.turned_negative(TURNED, n=30, negative_share=0.8))
    store.write_reviews(scenario.newcomer("NEW-1"))
    raised = []
    for _ in range(2):  # within two evaluation intervals
        raised = evaluate(engine).raised
        if raised:
            break
    assert [(a["kind"], a["subject"]) for a in raised] == [("negative_spike", "P007")]
    alert = raised[0]
    assert alert["severity"] == "critical"
    assert alert["category"] == Scenario.category(TURNED)
    assert alert["figures"] == {
        "window_reviews": 30,
        "window_negative": 24,
        "negative_ratio": 0.8,
        "baseline_reviews": 40,
        "baseline_negative": 8,
        "baseline_ratio": 0.2,  # (8 + 0.2 * 20) / (40 + 20): own history, smoothed
        "lift": 4.0,
        "threshold_ratio": 0.5,
        "threshold_lift": 2.0,
    }
    assert {k["keyword"]: k["reviews"] for k in alert["top_complaints"]} == {
        "漏水": 24,
        "质量差": 24,
        "退货": 24,
    }
    assert len(alert["sample_review_ids"]) == config.alerts.alert_sample_reviews
    assert all(rid.startswith("t-P007-") for rid in alert["sample_review_ids"])

    on_topic = alerts_on_topic(config.kafka)
    assert [(key, a["alert_id"]) for key, a in on_topic] == [("P007", alert["alert_id"])]
    assert on_topic[0][1] == alert
    table = alerts_in_table(ch)
    assert [(r[0], r[1], r[2], r[3]) for r in table] == [
        (alert["alert_id"], "negative_spike", "P007", PUBLISHED)
    ]
    assert metrics.alerts_raised.labels(kind="negative_spike")._value.get() == 1
    assert metrics.alert_evaluation_seconds._sum.get() > 0

    # The incident goes on: the next evaluations extend it instead of raising it again.
    again = evaluate(engine)
    assert again.raised == [] and again.continued == [alert["alert_id"]]

    # A restart: a new engine with a new connection reads its state back from ClickHouse.
    engine.close()
    restarted = new_engine(config, open_clickhouse(config.clickhouse))
    after_restart = evaluate(restarted)
    assert after_restart.raised == []
    assert after_restart.continued == [alert["alert_id"]]
    restarted.close()
    assert [a["alert_id"] for _, a in alerts_on_topic(config.kafka)] == [alert["alert_id"]]
    assert len(alerts_in_table(ch)) == 1


def test_pending_alerts_are_published_after_a_failed_publish(
    config: WorkerConfig, open_clickhouse: Callable[[ClickHouseConfig], ClickHouse]
) -> None:
    """The broker is down when alerts are raised: they stay pending in the table and the
    next evaluation (here by a restarted engine) publishes them, with the same ids.

    With 10 products (2 per category) the turned product also drags its category's net
    score from 0.40 to -0.10, so this also raises a category drop."""
    ch = open_clickhouse(config.clickhouse)
    store = ReviewStore(ch)
    scenario = Scenario(now=datetime.now(UTC), products=10)
    store.write_reviews(scenario.steady_history())
    store.write_reviews(scenario.steady_window(skip={3}))
    store.write_reviews(scenario.turned_negative(3))
    category = Scenario.category(3)

    dead = config.kafka.model_copy(update={"kafka_broker": f"127.0.0.1:{free_port()}"})
    broken = AlertEngine(config.alerts, ch, KafkaAlertPublisher(dead, timeout_s=2.0))
    with pytest.raises(DeliveryError):
        evaluate(broken)
    broken.close()
    pending = {(r[1], r[2], r[3]): r[0] for r in alerts_in_table(ch)}
    assert set(pending) == {
        ("negative_spike", "P003", PENDING),
        ("category_drop", category, PENDING),
    }
    assert alerts_on_topic(config.kafka) == []

    engine = new_engine(config, ch)
    result = evaluate(engine)
    engine.close()
    ids = set(pending.values())
    assert set(result.republished) == ids
    assert result.raised == [] and set(result.continued) == ids
    on_topic = alerts_on_topic(config.kafka)
    assert sorted((key, a["alert_id"]) for key, a in on_topic) == sorted(
        [
            ("P003", pending[("negative_spike", "P003", PENDING)]),
            (category, pending[("category_drop", category, PENDING)]),
        ]
    )
    drop = next(a for _, a in on_topic if a["kind"] == "category_drop")
    assert drop["figures"]["baseline_net_score"] == 0.4
    assert drop["figures"]["window_net_score"] == -0.1
    assert {(r[0], r[3]) for r in alerts_in_table(ch)} == {(i, PUBLISHED) for i in ids}


def test_complaint_surge_without_a_negative_spike(
    make_config: Callable[..., WorkerConfig],
    open_clickhouse: Callable[[ClickHouseConfig], ClickHouse],
) -> None:
    """40% negative (under the spike threshold), but every negative review is a complaint:
    the complaint share is 8x the product's baseline."""
    config = make_config(topic_partitions=1)
    ensure_topics(config.kafka, [config.kafka.alerts_topic])
    ch = open_clickhouse(config.clickhouse)
    store = ReviewStore(ch)
    scenario = Scenario(now=datetime.now(UTC), products=20)
    store.write_reviews(scenario.steady_history())
    store.write_reviews(scenario.steady_window(skip={5}))
    store.write_reviews(scenario.turned_negative(5, n=30, negative_share=0.4))
    engine = new_engine(config, ch)
    result = evaluate(engine)
    engine.close()
    [alert] = result.raised
    assert (alert["kind"], alert["subject"], alert["severity"]) == (
        "complaint_surge",
        "P005",
        "critical",
    )
    assert alert["figures"]["complaint_reviews"] == 12
    assert alert["figures"]["complaint_share"] == 0.4
    assert alert["figures"]["baseline_share"] == 0.05  # (2 + 0.05 * 20) / (40 + 20)
    assert alert["figures"]["lift"] == 8.0
    assert "漏水" in alert["message"]
    [(key, on_topic)] = alerts_on_topic(config.kafka)
    assert key == "P005" and on_topic == alert
