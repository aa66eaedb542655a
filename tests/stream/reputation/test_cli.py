"""``reviewpulse report`` and ``reviewpulse alerts`` through the real entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from stream.cli import build_parser, main
from stream.config import ClickHouseConfig, WorkerConfig
from stream.sink.backend import ClickHouse
from stream.sink.store import ReviewStore
from tests.stream.harness import read_topic
from tests.stream.reputation.traffic import Traffic, category

KAFKA_FLAGS = ("kafka_broker", "input_topic", "alerts_topic")
CLICKHOUSE_FLAGS = (
    "clickhouse_backend",
    "clickhouse_host",
    "clickhouse_port",
    "clickhouse_database",
    "chdb_path",
)


def flags(config: WorkerConfig, *names: str) -> list[str]:
    values = {**config.kafka.model_dump(), **config.clickhouse.model_dump()}
    found = []
    for name in names:
        found += ["--" + name.replace("_", "-"), str(values[name])]
    return found


@pytest.mark.broker
@pytest.mark.clickhouse
@pytest.mark.parametrize("backend", ["native", "embedded"])
def test_alerts_then_report(
    backend: str,
    make_config: Callable[..., WorkerConfig],
    open_clickhouse: Callable[[ClickHouseConfig], ClickHouse],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = make_config(clickhouse_backend=backend)
    ch = open_clickhouse(config.clickhouse)
    now = datetime.now(UTC)
    traffic = Traffic(seed=31)
    start, turn = now - timedelta(hours=2), now - timedelta(minutes=15)
    traffic.shop([i for i in range(20) if i != 4], start, now, per_minute=3.0)
    traffic.reviews("P004", category(4), start, turn, per_minute=3.0)
    traffic.reviews(
        "P004", category(4), turn, now, per_minute=3.0, negative_share=0.85, complaint_share=0.9
    )
    ReviewStore(ch).write_reviews(traffic.rows)
    if backend == "embedded":
        ch.close()  # the command opens the chdb directory itself (one process, one holder)

    assert main(["alerts", *flags(config, *KAFKA_FLAGS, *CLICKHOUSE_FLAGS)]) == 0
    out = capsys.readouterr().out
    assert "1 new alert(s)" in out and "P004" in out
    assert "event time 60 minute(s)" in out and "consumer lag 0 s" in out
    [message] = read_topic(config.kafka.kafka_broker, config.kafka.alerts_topic, idle_s=1.0)
    assert message.key() == b"P004"

    report_flags = flags(config, *CLICKHOUSE_FLAGS)
    assert main(["report", *report_flags]) == 0
    out = capsys.readouterr().out
    assert "Top products by negative ratio (last 24h)" in out
    assert "Rising complaint keywords" in out
    assert "Recent alerts" in out
    lines = out.splitlines()
    products = lines.index("Top products by negative ratio (last 24h)")
    assert lines[products + 4].startswith("P004 ")  # title, blank, header, rule, first row
    assert "negative_spike" in out or "complaint_surge" in out

    assert main(["report", "products", "--period", "1h", "--json", *report_flags]) == 0
    report = json.loads(capsys.readouterr().out)
    [rows] = report.values()
    assert rows[0]["product_id"] == "P004"
    assert rows[0]["negative_ratio"] > 0.3


def test_each_command_takes_the_flags_of_the_sections_it_reads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def help_of(command: str) -> str:
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        return capsys.readouterr().out

    report, alerts = help_of("report"), help_of("alerts")
    assert "--clickhouse-database" in report and "--kafka-broker" not in report
    assert "--alert-interval-s" not in report and "--batch-size" not in report
    for flag in ("--kafka-broker", "--alerts-topic", "--alert-min-volume", "--chdb-path"):
        assert flag in alerts
    # Model health: the served model's card and the monitor thresholds.
    assert "--model-name" in alerts and "--monitor-label-psi" in alerts
    assert "--batch-size" not in alerts
