"""Alerting through real worker processes: the issue's scenario end to end with default
alert settings, and two workers sharing the group with exactly one evaluator.

Needs the served model in ``model/registry`` because the worker loads it.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from model.corpus import SHIPPED_CORPUS
from model.registry import resolve_model_dir
from model.text import clean_text
from stream.config import PROJECT_ROOT, ModelConfig, WorkerConfig
from stream.events import format_timestamp
from stream.kafka import ensure_topics
from stream.keywords import Keywords
from stream.local.processes import free_port
from stream.metrics import read_samples
from stream.replay import read_corpus
from stream.sink.connection import connect
from stream.sink.migrations import migrate
from stream.sink.store import ReviewStore
from tests.stream.harness import WorkerProcess, read_topic, wait_for
from tests.stream.reputation.traffic import Traffic, category, product_id

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse, pytest.mark.slow]

MINUTE = timedelta(minutes=1)
PRODUCE = (sys.executable, "-m", "stream.cli", "produce")


def served_model_available(model: ModelConfig) -> bool:
    try:
        resolve_model_dir(model.model_registry, model.model_name, model.model_version)
    except FileNotFoundError:
        return False
    return True


def health(worker: WorkerProcess) -> dict[str, Any]:
    """The worker's /health body (200 or 503), or {} while it does not answer."""
    try:
        return worker.get_json("/health")[1]
    except OSError:
        return {}


def alerts(config: WorkerConfig) -> list[tuple[str, dict]]:
    kafka = config.kafka
    return [
        (m.key().decode(), json.loads(m.value()))
        for m in read_topic(kafka.kafka_broker, kafka.alerts_topic, idle_s=1.0)
    ]


def scenario_events(now: datetime, seed: int = 11) -> tuple[list[dict], str, datetime]:
    """The issue's scenario as full ``review.created`` events with corpus texts: 50 products
    (5 in each corpus category) with 6 reviews a minute for 30 minutes, 15% negative; one
    product 85% negative with complaint texts for the last 10 minutes; a new product with 3
    negative reviews. Returns the events, the turned product and when it turned."""
    rng = random.Random(seed)
    sources = read_corpus(SHIPPED_CORPUS)
    categories = sorted({s.category for s in sources})
    keywords = Keywords.load()
    texts: dict[tuple[str, int], list[str]] = {}
    complaints: dict[str, list[str]] = {}
    for source in sources:
        texts.setdefault((source.category, source.label or 0), []).append(source.text)
        if source.label == 0 and keywords.extract(clean_text(source.text)).complaint_keywords:
            complaints.setdefault(source.category, []).append(source.text)
    events: list[dict] = []

    def review(product: str, cat: str, at: datetime, negative: bool, complaint: bool) -> None:
        pool = complaints[cat] if complaint else texts[(cat, 0 if negative else 1)]
        events.append(
            {
                "schema_version": 1,
                "review_id": f"sc-{seed}-{len(events)}",
                "product_id": product,
                "category": cat,
                "user_id": f"u{rng.randrange(100_000)}",
                "text": rng.choice(pool),
                "created_at": format_timestamp(at),
            }
        )

    start, turned_at = now - 30 * MINUTE, now - 10 * MINUTE
    turned = "S-手机-2"
    for i in range(50):
        cat = categories[i % len(categories)]
        product = f"S-{cat}-{i // len(categories)}"
        t = start
        while True:
            t += timedelta(minutes=rng.expovariate(6.0))
            if t >= now:
                break
            incident = product == turned and t >= turned_at
            negative = rng.random() < (0.85 if incident else 0.15)
            review(product, cat, t, negative, complaint=incident and negative)
    for minutes in (8, 5, 2):
        review("NEW-1", "衣服", now - minutes * MINUTE, True, complaint=True)
    return events, turned, turned_at


def test_the_scenario_through_a_real_worker_with_default_settings(
    make_config: Callable[..., WorkerConfig], tmp_path: Path
) -> None:
    """An incident is alerted within minutes of its event time, and nothing else is: not
    the steady products, not the new product with three negative reviews, not the lag."""
    config = make_config(web_port=free_port(), model_max_length=64)
    if not served_model_available(config.model):
        pytest.skip("no served model in model/registry (train one: reviewpulse train)")
    assert config.alerts.model_dump() == type(config.alerts)().model_dump()  # defaults
    ensure_topics(config.kafka)
    now = datetime.now(UTC)
    events, turned, turned_at = scenario_events(now)
    source = tmp_path / "reviews.jsonl"
    source.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in events) + "\n")

    with WorkerProcess(config, tmp_path / "worker.log") as worker:
        wait_for(lambda: bool(health(worker)), timeout_s=120, what="the worker", worker=worker)
        subprocess.run(
            [*PRODUCE, "--source", str(source), "--count", "0", "--rate", "0"],
            cwd=PROJECT_ROOT,
            env=config.env(),
            check=True,
        )
        last_minute = max(datetime.fromisoformat(e["created_at"]) for e in events).replace(second=0)

        def evaluated_to_the_end() -> bool:
            part = health(worker).get("alerts", {})
            until = part.get("evaluated_until")
            return until is not None and datetime.fromisoformat(until) >= last_minute

        wait_for(
            evaluated_to_the_end,
            timeout_s=300,
            what="the alert engine to evaluate the whole scenario",
            worker=worker,
        )
        raised = alerts(config)
        part = health(worker)["alerts"]
        metrics = worker.metrics_text()
    assert [key for key, _ in raised] == [turned], raised
    [(_, alert)] = raised
    assert alert["kind"] in ("negative_spike", "complaint_surge")
    assert alert["severity"] == "critical"
    detected = datetime.fromisoformat(alert["window_end"])
    assert turned_at < detected <= turned_at + 5 * MINUTE, (turned_at, alert["message"])
    assert part["role"] == "evaluator" and part["consecutive_failures"] == 0
    assert part["lag_seconds"] is not None and part["lag_seconds"] < 600
    assert read_samples(metrics, "reviewpulse_alert_evaluation_failures_total") == {(): 0.0}
    assert read_samples(metrics, "reviewpulse_alert_evaluator") == {(): 1.0}


def test_two_workers_one_evaluator_and_no_duplicate_across_a_rebalance(
    make_config: Callable[..., WorkerConfig], tmp_path: Path
) -> None:
    config = make_config(alert_interval_s=1.0, topic_partitions=2, model_max_length=64)
    if not served_model_available(config.model):
        pytest.skip("no served model in model/registry (train one: reviewpulse train)")
    ensure_topics(config.kafka)
    # ClickHouse holds the classified reviews already: the timer reads ClickHouse however
    # the reviews got there, so no model time is spent on them.
    ch = connect(config.clickhouse)
    migrate(ch)
    store = ReviewStore(ch)
    now = datetime.now(UTC)
    traffic = Traffic(seed=21)
    start = now - timedelta(hours=2)
    traffic.shop([i for i in range(20) if i != 7], start, now)
    traffic.reviews(product_id(7), category(7), start, now - 12 * MINUTE)
    traffic.reviews(
        product_id(7),
        category(7),
        now - 12 * MINUTE,
        now,
        negative_share=0.85,
        complaint_share=0.9,
    )
    store.write_reviews(traffic.rows)

    workers = [
        WorkerProcess(
            config.replace(web_port=free_port(), worker_data_dir=tmp_path / f"worker-{name}"),
            tmp_path / f"worker-{name}.log",
        ).start()
        for name in ("a", "b")
    ]
    try:

        def roles() -> list[str | None]:
            return [health(w).get("alerts", {}).get("role") for w in workers]

        def one_evaluator() -> bool:
            found = roles()
            parts = [health(w).get("broker", {}).get("assigned_partitions") for w in workers]
            return found.count("evaluator") == 1 and all(parts)

        wait_for(one_evaluator, timeout_s=120, what="one evaluator among two members")
        evaluator = workers[roles().index("evaluator")]
        wait_for(lambda: bool(alerts(config)), timeout_s=60, what="the first alert")
        [(key, first)] = alerts(config)
        assert key == product_id(7)

        status, body = evaluator.get_json("/reports/alerts")
        assert status == 200 and [r["alert_id"] for r in body["rows"]] == [first["alert_id"]]
        status, body = evaluator.get_json("/reports/products?period=1h&limit=3")
        assert status == 200 and body["rows"][0]["product_id"] == product_id(7)

        # The evaluator leaves; the other member takes over and carries on.
        evaluator.stop()
        survivor = next(w for w in workers if w is not evaluator)
        wait_for(
            lambda: health(survivor).get("alerts", {}).get("role") == "evaluator",
            timeout_s=120,
            what="the survivor to become the evaluator",
            worker=survivor,
        )
        later = datetime.now(UTC)
        second = Traffic(seed=22)
        second.reviews(
            product_id(3),
            category(3),
            later - 8 * MINUTE,
            later,
            negative_share=0.9,
            complaint_share=0.9,
        )
        store.write_reviews(second.rows)
        wait_for(
            lambda: len(alerts(config)) >= 2, timeout_s=60, what="the second alert", worker=survivor
        )
        # A few more ticks: the first incident is continued, never raised again.
        part = {}

        def evaluated_twice_more() -> bool:
            nonlocal part
            part = health(survivor).get("alerts", {})
            return part.get("evaluations", 0) >= 5

        wait_for(evaluated_twice_more, timeout_s=60, what="more evaluations", worker=survivor)
        raised = alerts(config)
        assert sorted(key for key, _ in raised) == sorted([product_id(7), product_id(3)])
        assert len({a["alert_id"] for _, a in raised}) == 2
        assert part["role"] == "evaluator" and part["failures"] == 0
    finally:
        for worker in workers:
            if worker.alive():
                worker.stop()
        ch.close()
