"""``reviewpulse report`` and ``reviewpulse alerts`` commands."""

from __future__ import annotations

import argparse
import json
from typing import Any

from stream.config import (
    AlertConfig,
    ClickHouseConfig,
    KafkaConfig,
    ModelConfig,
    MonitorConfig,
    add_config_arguments,
    resolve,
)

PRODUCT_TABLE = (
    "product_id",
    "category",
    "reviews",
    "negative_ratio",
    "negative_ratio_trend",
    "net_score",
    "net_score_trend",
)
COMPLAINT_TABLE = ("product_id", "category", "keyword", "current", "previous", "change")
ALERT_TABLE = ("raised_at", "severity", "kind", "subject", "message")


def register(subparsers: Any) -> None:
    report = subparsers.add_parser(
        "report",
        help="Print reputation tables: worst products, rising complaints, recent alerts, "
        "model health.",
        description="Reads the reputation views in ClickHouse (either backend) and prints "
        "readable tables. Ratios are shares of distinct reviews; trends compare with the "
        "period just before.",
    )
    report.add_argument(
        "section",
        nargs="?",
        choices=("all", "products", "complaints", "alerts", "model"),
        default="all",
        help="Which table to print [default: all].",
    )
    report.add_argument("--period", choices=("1h", "24h"), default="24h", help="Product window.")
    report.add_argument("--limit", type=int, default=10, help="Rows per table.")
    report.add_argument(
        "--min-reviews", type=int, default=20, help="Least reviews for a product to be ranked."
    )
    report.add_argument(
        "--hours",
        type=int,
        default=24,
        help="Complaint comparison window; also the model section's window.",
    )
    report.add_argument("--json", action="store_true", help="Print JSON instead of tables.")
    add_config_arguments(report, ClickHouseConfig, ModelConfig, MonitorConfig)
    report.set_defaults(func=run_report)

    alerts = subparsers.add_parser(
        "alerts",
        help="Run one alert evaluation now (the worker does this on a timer).",
        description="Evaluates the alert rules once against ClickHouse (every minute of event "
        "time since the last evaluation, up to the newest processed review), publishes new "
        "alerts to the alerts topic and records them in the alerts table. Safe to run beside "
        "the worker: incidents and progress live in ClickHouse, and an incident's alert_id is "
        "the same whoever raises it. It does not take the worker's fenced producer. Model "
        "health (model_drift, feedback_drop) is checked for the configured model version's "
        "traffic against its card.",
    )
    add_config_arguments(
        alerts, KafkaConfig, AlertConfig, ClickHouseConfig, ModelConfig, MonitorConfig
    )
    alerts.set_defaults(func=run_alerts)


def run_report(args: argparse.Namespace) -> int:
    from stream.reputation import reports
    from stream.sink.connection import connect

    ch = connect(resolve(ClickHouseConfig, args))
    try:
        sections: dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]] = {}
        if args.section in ("all", "products"):
            rows = reports.top_products(
                ch, period=args.period, limit=args.limit, min_reviews=args.min_reviews
            )
            sections[f"Top products by negative ratio (last {args.period})"] = (
                rows,
                PRODUCT_TABLE,
            )
        if args.section in ("all", "complaints"):
            rows = reports.rising_complaints(ch, hours=args.hours, limit=args.limit)
            sections[
                f"Rising complaint keywords (last {args.hours} h vs the {args.hours} h before)"
            ] = (
                rows,
                COMPLAINT_TABLE,
            )
        if args.section in ("all", "alerts"):
            rows = reports.recent_alerts(ch, limit=args.limit)
            sections["Recent alerts"] = (rows, ALERT_TABLE)
        if args.section in ("all", "model"):
            sections.update(_model_sections(ch, args))
    finally:
        ch.close()
    if args.json:
        print(
            json.dumps(
                {title: reports.jsonable(rows) for title, (rows, _) in sections.items()},
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    for title, (rows, columns) in sections.items():
        print(f"\n{title}\n")
        print(reports.format_table(rows, columns))
    return 0


def _model_sections(ch: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Rating feedback, prediction x rating and drift (``stream.monitoring.report``)."""
    from datetime import UTC, datetime

    from stream.monitoring.report import model_health_sections, served_card

    card = served_card(resolve(ModelConfig, args))
    return model_health_sections(
        ch,
        card,
        resolve(MonitorConfig, args),
        hours=args.hours,
        limit=args.limit,
        now=datetime.now(UTC),
    )


def run_alerts(args: argparse.Namespace) -> int:
    import asyncio

    from stream.kafka import ConsumerLagProbe, ensure_topics
    from stream.monitoring.health import ServedModel
    from stream.monitoring.report import served_card
    from stream.reputation.engine import AlertEngine
    from stream.reputation.publisher import KafkaAlertPublisher
    from stream.sink.connection import connect

    kafka = resolve(KafkaConfig, args)
    ensure_topics(kafka, [kafka.input_topic, kafka.alerts_topic])
    ch = connect(resolve(ClickHouseConfig, args))
    publisher = KafkaAlertPublisher(kafka)
    probe = ConsumerLagProbe(kafka, kafka.input_topic)
    card = served_card(resolve(ModelConfig, args))
    if isinstance(card, str):
        print(f"model health: {card}; feedback is checked against its baseline only")
    served = None if isinstance(card, str) else ServedModel(card.version, card.reference)
    engine = AlertEngine(
        resolve(AlertConfig, args),
        ch,
        publisher,
        lag_probe=probe,
        pipeline=kafka.input_topic,
        monitor=resolve(MonitorConfig, args),
        served_model=lambda: served,
    )
    try:
        result = asyncio.run(engine.evaluate())
    finally:
        engine.close()
        probe.close()
        publisher.close()
        ch.close()
    plan = result.plan
    steps = (
        f"{len(plan.buckets)} minute(s) {plan.first:%Y-%m-%d %H:%M}..{plan.last:%H:%M} UTC"
        if plan.first is not None and plan.last is not None
        else "nothing to evaluate (no reviews yet)"
    )
    lag = "unknown" if result.lag is None else f"{result.lag.seconds:.0f} s"
    print(
        f"event time {steps}: {result.findings} finding(s), {len(result.raised)} new "
        f"alert(s), {len(result.continued)} open incident(s) extended, "
        f"{len(result.republished)} pending re-published; consumer lag {lag} "
        f"({result.seconds:.2f} s)"
    )
    for event in result.raised:
        print(f"  [{event['severity']}] {event['kind']}: {event['message']}")
    return 0
