"""The alert engine against the real Tansu broker and real ClickHouse (18.16 and chdb 26.x).

The engine is driven directly (``AlertEngine.evaluate(now)``), so wall-clock time is the
test's to choose and nothing is timed. Traffic is irregular and seeded (``traffic.py``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer

from stream.config import ClickHouseConfig, KafkaConfig, WorkerConfig
from stream.kafka import ConsumerLagProbe, DeliveryError, Fenced, ensure_topics
from stream.local.processes import free_port
from stream.metrics import Metrics
from stream.reputation.alerts import PENDING, PUBLISHED
from stream.reputation.engine import AlertEngine, Evaluation
from stream.reputation.incidents import incident_id
from stream.reputation.publisher import FencedAlertPublisher, KafkaAlertPublisher
from stream.reputation.rules import SubjectType
from stream.sink.backend import ClickHouse
from stream.sink.store import ReviewStore
from tests.stream.harness import read_topic
from tests.stream.reputation.traffic import Traffic, category, product_id

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse]

MINUTE = timedelta(minutes=1)
TURNED = 7


def alerts_on_topic(kafka: KafkaConfig) -> list[tuple[str, dict]]:
    return [
        (m.key().decode(), json.loads(m.value()))
        for m in read_topic(kafka.kafka_broker, kafka.alerts_topic, idle_s=1.5)
    ]


def alerts_in_table(ch: ClickHouse) -> list[tuple]:
    return ch.query(
        "SELECT alert_id, argMax(kind, version), argMax(subject, version), "
        "argMax(status, version), argMax(last_seen_at, version) "
        "FROM alerts GROUP BY alert_id ORDER BY alert_id"
    )


def evaluate(engine: AlertEngine, now: datetime) -> Evaluation:
    return asyncio.run(engine.evaluate(now))


def new_engine(config: WorkerConfig, ch: ClickHouse, **kwargs) -> AlertEngine:
    return AlertEngine(config.alerts, ch, KafkaAlertPublisher(config.kafka), **kwargs)


@pytest.fixture(params=["native", "embedded"])
def config(
    request: pytest.FixtureRequest, make_config: Callable[..., WorkerConfig]
) -> WorkerConfig:
    """ClickHouse 18.16 server and chdb 26.x; fresh topics on the Tansu broker."""
    config = make_config(topic_partitions=2, clickhouse_backend=request.param)
    ensure_topics(config.kafka, [config.kafka.input_topic, config.kafka.alerts_topic])
    return config


def incident_traffic(end: datetime, turned_minutes: int = 12, seed: int = 1) -> Traffic:
    """20 products at 6 reviews a minute, 15% negative, for the two hours to ``end``;
    product 7 turns 85% negative with complaint texts for the last ``turned_minutes``; a
    new product gets three negative complaint reviews in the last ten minutes."""
    traffic = Traffic(seed=seed)
    start, turn = end - timedelta(hours=2), end - turned_minutes * MINUTE
    traffic.shop([i for i in range(20) if i != TURNED], start, end)
    traffic.reviews(product_id(TURNED), category(TURNED), start, turn)
    traffic.reviews(
        product_id(TURNED),
        category(TURNED),
        turn,
        end,
        negative_share=0.85,
        complaint_share=0.9,
    )
    traffic.burst("NEW-1", "手机", [end - m * MINUTE for m in (9, 6, 2)])
    return traffic


def test_an_incident_is_raised_once_within_minutes_of_its_start(
    config: WorkerConfig, open_clickhouse: Callable[[ClickHouseConfig], ClickHouse]
) -> None:
    ch = open_clickhouse(config.clickhouse)
    now = datetime.now(UTC)
    traffic = incident_traffic(now)
    ReviewStore(ch).write_reviews(traffic.rows)
    metrics = Metrics()
    engine = new_engine(config, ch, metrics=metrics)

    # The first run steps through the last hour of event time, minute by minute.
    result = evaluate(engine, now)
    assert len(result.plan.buckets) == 60
    [alert] = result.raised
    assert alert["subject"] == product_id(TURNED)
    assert alert["kind"] in ("negative_spike", "complaint_surge")
    assert alert["severity"] == "critical"
    assert alert["category"] == category(TURNED)
    # Detected in event time within 5 minutes of the turn (the bucket ends a minute later).
    turned_at = now - 12 * MINUTE
    detected = datetime.fromisoformat(alert["window_end"])
    assert turned_at < detected <= turned_at + 6 * MINUTE
    onset = detected - MINUTE if detected.second == 0 else detected.replace(second=0)
    assert alert["alert_id"] == incident_id(SubjectType.PRODUCT, product_id(TURNED), onset)
    assert alert["figures"]["evidence"] >= alert["figures"]["threshold_evidence"]
    assert {"漏水", "质量差", "退货"} & {k["keyword"] for k in alert["top_complaints"]}
    turned_ids = {r.review_id for r in traffic.rows if r.product_id == product_id(TURNED)}
    assert len(alert["sample_review_ids"]) == config.alerts.alert_sample_reviews
    assert set(alert["sample_review_ids"]) <= turned_ids

    [(key, on_topic)] = alerts_on_topic(config.kafka)
    assert key == product_id(TURNED) and on_topic == alert
    [row] = alerts_in_table(ch)
    assert row[:4] == (alert["alert_id"], alert["kind"], product_id(TURNED), PUBLISHED)
    assert metrics.alerts_raised.labels(kind=alert["kind"])._value.get() == 1
    assert engine.health()["evaluated_until"] is not None
    assert engine.health()["lexicon_learned_at"] is not None

    # The incident goes on: later evaluations extend it instead of raising it again.
    again = evaluate(engine, now + timedelta(seconds=30))
    assert again.raised == [] and again.continued == [alert["alert_id"]]
    engine.close()
    # A restart: a new engine with a new connection reads its state back from ClickHouse.
    restarted = new_engine(config, open_clickhouse(config.clickhouse))
    after = evaluate(restarted, now + MINUTE)
    restarted.close()
    assert after.raised == [] and after.continued == [alert["alert_id"]]
    assert [a["alert_id"] for _, a in alerts_on_topic(config.kafka)] == [alert["alert_id"]]


def test_a_restart_longer_than_the_cooldown_does_not_raise_again(
    config: WorkerConfig, open_clickhouse: Callable[[ClickHouseConfig], ClickHouse]
) -> None:
    ch = open_clickhouse(config.clickhouse)
    store = ReviewStore(ch)
    stop = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=5)
    first = incident_traffic(stop, seed=2)
    store.write_reviews(first.rows)
    engine = new_engine(config, ch)
    [alert] = evaluate(engine, stop).raised
    engine.close()

    # The worker is down for 100 minutes (cooldown 60); the incident goes on meanwhile and
    # the backlog is processed when it is back.
    resume = stop + timedelta(minutes=100)
    backlog = Traffic(seed=3)
    backlog.shop([i for i in range(20) if i != TURNED], stop, resume)
    backlog.reviews(
        product_id(TURNED),
        category(TURNED),
        stop,
        resume,
        negative_share=0.85,
        complaint_share=0.9,
    )
    store.write_reviews(backlog.rows)
    restarted = new_engine(config, open_clickhouse(config.clickhouse))
    caught_up = evaluate(restarted, resume)
    # It resumes a little before the last minute it evaluated (the last one with data).
    assert caught_up.plan.first == stop - MINUTE - timedelta(minutes=10)
    assert caught_up.plan.last == resume - MINUTE
    assert caught_up.raised == [] and caught_up.continued == [alert["alert_id"]]
    # Three more hours of wall time with no new data: event time stands still, no re-raise.
    idle = evaluate(restarted, resume + timedelta(hours=3))
    restarted.close()
    assert idle.raised == [] and idle.continued == [alert["alert_id"]]
    [row] = alerts_in_table(ch)
    assert row[4] == resume - MINUTE  # last seen: event time
    assert len(alerts_on_topic(config.kafka)) == 1


def test_an_incident_replayed_an_hour_late_keeps_its_event_time_and_the_lag_alerts(
    config: WorkerConfig, open_clickhouse: Callable[[ClickHouseConfig], ClickHouse]
) -> None:
    kafka = config.kafka
    now = datetime.now(UTC)
    # The input topic holds messages the group has not processed, sent two hours ago.
    producer = Producer({"bootstrap.servers": kafka.kafka_broker})
    sent_ms = int((time.time() - 2 * 3600) * 1000)
    for i in range(20):
        producer.produce(kafka.input_topic, b"{}", f"k{i}".encode(), timestamp=sent_ms)
    producer.flush(10)

    ch = open_clickhouse(config.clickhouse)
    late = now - timedelta(hours=1)
    traffic = incident_traffic(late, seed=4)
    ReviewStore(ch).write_reviews(traffic.rows)
    probe = ConsumerLagProbe(kafka, kafka.input_topic)
    engine = new_engine(config, ch, lag_probe=probe, pipeline=kafka.input_topic)
    result = evaluate(engine, now)
    engine.close()
    probe.close()

    by_kind = {a["kind"]: a for a in result.raised}
    assert set(by_kind) - {"negative_spike", "complaint_surge"} == {"pipeline_lag"}
    [incident] = [a for a in result.raised if a["kind"] != "pipeline_lag"]
    assert incident["subject"] == product_id(TURNED)
    detected = datetime.fromisoformat(incident["window_end"])
    turned_at = late - 12 * MINUTE
    assert turned_at < detected <= turned_at + 6 * MINUTE  # its own event time
    assert datetime.fromisoformat(incident["raised_at"]) >= now.replace(microsecond=0)

    lag = by_kind["pipeline_lag"]
    assert (lag["subject_type"], lag["subject"], lag["severity"]) == (
        "pipeline",
        kafka.input_topic,
        "critical",
    )
    assert 7000 < lag["figures"]["lag_seconds"] < 7400
    assert lag["figures"]["unprocessed_messages"] >= 1
    assert result.lag is not None and result.lag.seconds > 7000
    keys = sorted(key for key, _ in alerts_on_topic(kafka))
    assert keys == sorted([product_id(TURNED), kafka.input_topic])


def test_pending_alerts_are_published_after_a_failed_publish(
    config: WorkerConfig, open_clickhouse: Callable[[ClickHouseConfig], ClickHouse]
) -> None:
    """The broker is down when the alert is raised: it stays pending in the table and the
    next evaluation (here by a restarted engine) publishes it, with the same id."""
    ch = open_clickhouse(config.clickhouse)
    now = datetime.now(UTC)
    ReviewStore(ch).write_reviews(incident_traffic(now, seed=5).rows)

    dead = config.kafka.model_copy(update={"kafka_broker": f"127.0.0.1:{free_port()}"})
    unreachable = KafkaAlertPublisher(dead, timeout_s=2.0)
    metrics = Metrics()
    broken = AlertEngine(config.alerts, ch, unreachable, metrics=metrics)
    with pytest.raises(DeliveryError):
        evaluate(broken, now)
    assert broken.health()["consecutive_failures"] == 1
    assert "DeliveryError" in broken.health()["last_error"]
    assert metrics.alert_evaluation_failures._value.get() == 1
    broken.close()
    unreachable.close()
    [pending] = alerts_in_table(ch)
    assert pending[2:4] == (product_id(TURNED), PENDING)
    assert alerts_on_topic(config.kafka) == []

    engine = new_engine(config, ch)
    result = evaluate(engine, now + timedelta(seconds=30))
    engine.close()
    assert result.republished == [pending[0]]
    assert result.raised == [] and result.continued == [pending[0]]
    [(key, event)] = alerts_on_topic(config.kafka)
    assert (key, event["alert_id"]) == (product_id(TURNED), pending[0])
    assert [r[3] for r in alerts_in_table(ch)] == [PUBLISHED]


def test_complaint_surge_without_a_negative_spike(
    make_config: Callable[..., WorkerConfig],
    open_clickhouse: Callable[[ClickHouseConfig], ClickHouse],
) -> None:
    """A moderate rise of negative reviews that are nearly all complaints: the complaint
    share moves far more than the negative share, and only it fires."""
    config = make_config(topic_partitions=1)
    ensure_topics(config.kafka, [config.kafka.alerts_topic])
    ch = open_clickhouse(config.clickhouse)
    now = datetime.now(UTC)
    traffic = Traffic(seed=6)
    start, turn = now - timedelta(hours=2), now - 20 * MINUTE
    traffic.shop([i for i in range(20) if i != 5], start, now, complaint_share=0.1)
    traffic.reviews(product_id(5), category(5), start, turn, complaint_share=0.1)
    traffic.reviews(product_id(5), category(5), turn, now, negative_share=0.3, complaint_share=1.0)
    ReviewStore(ch).write_reviews(traffic.rows)
    engine = new_engine(config, ch)
    result = evaluate(engine, now)
    engine.close()
    [alert] = result.raised
    assert (alert["kind"], alert["subject"]) == ("complaint_surge", product_id(5))
    assert alert["figures"]["normal_rate"] < 0.05
    assert "complaints (" in alert["message"]


def test_an_expelled_evaluator_is_fenced_and_its_alert_published_by_the_new_one(
    make_config: Callable[..., WorkerConfig],
    open_clickhouse: Callable[[ClickHouseConfig], ClickHouse],
) -> None:
    """Two members believe they evaluate: the one that acquired the alert producer last
    fences the other at the broker, which then cannot publish."""
    config = make_config(topic_partitions=1)
    ensure_topics(config.kafka, [config.kafka.alerts_topic])
    ch = open_clickhouse(config.clickhouse)
    now = datetime.now(UTC)
    ReviewStore(ch).write_reviews(incident_traffic(now, seed=7).rows)

    async def run() -> tuple[Evaluation, type[BaseException] | None]:
        old, new = FencedAlertPublisher(config.kafka), FencedAlertPublisher(config.kafka)
        await old.acquire(term=1)
        await new.acquire(term=2)  # the group moved the evaluator's partition
        zombie = AlertEngine(config.alerts, ch, old)
        fenced: type[BaseException] | None = None
        try:
            await zombie.evaluate(now)
        except Fenced as exc:
            fenced = type(exc)
        evaluator = AlertEngine(config.alerts, ch, new)
        result = await evaluator.evaluate(now + timedelta(seconds=30))
        for engine in (zombie, evaluator):
            engine.close()
        old.close()
        new.close()
        return result, fenced

    result, fenced = asyncio.run(run())
    assert fenced is Fenced
    # The zombie's alert was only written pending; the evaluator publishes it, once.
    assert len(result.republished) == 1 and result.raised == []
    [(key, event)] = alerts_on_topic(config.kafka)
    assert key == product_id(TURNED) and event["alert_id"] == result.republished[0]
