"""``reviewpulse report`` and ``reviewpulse alerts`` through the real entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from stream.cli import main
from stream.settings import Settings
from stream.sink.backend import ClickHouse
from stream.sink.store import ReviewStore
from tests.reputation.scenario import Scenario
from tests.stream.harness import read_topic

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse]


def settings_flags(settings: Settings) -> list[str]:
    names = (
        "kafka_broker",
        "alerts_topic",
        "clickhouse_backend",
        "clickhouse_host",
        "clickhouse_port",
        "clickhouse_database",
        "chdb_path",
    )
    flags = []
    for name in names:
        flags += ["--" + name.replace("_", "-"), str(getattr(settings, name))]
    return flags


@pytest.mark.parametrize("backend", ["native", "embedded"])
def test_alerts_then_report(
    backend: str,
    make_settings: Callable[..., Settings],
    open_clickhouse: Callable[[Settings], ClickHouse],
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(clickhouse_backend=backend)
    ch = open_clickhouse(settings)
    scenario = Scenario(now=datetime.now(UTC), products=20)
    store = ReviewStore(ch)
    store.write_reviews(scenario.steady_history())
    store.write_reviews(scenario.steady_window(skip={4}))
    store.write_reviews(scenario.turned_negative(4))
    if backend == "embedded":
        ch.close()  # the command opens the chdb directory itself (one process, one holder)

    assert main(["alerts", *settings_flags(settings)]) == 0
    out = capsys.readouterr().out
    assert "1 new alert(s)" in out and "P004" in out
    [message] = read_topic(settings.kafka_broker, settings.alerts_topic, idle_s=1.0)
    assert message.key() == b"P004"

    assert main(["report", *settings_flags(settings)]) == 0
    out = capsys.readouterr().out
    assert "Top products by negative ratio (last 24h)" in out
    assert "Rising complaint keywords" in out
    assert "Recent alerts" in out
    lines = out.splitlines()
    products = lines.index("Top products by negative ratio (last 24h)")
    assert lines[products + 4].startswith("P004 ")  # title, blank, header, rule, first row
    assert "negative_spike" in out

    assert main(["report", "products", "--period", "1h", "--json", *settings_flags(settings)]) == 0
    report = json.loads(capsys.readouterr().out)
    [rows] = report.values()
    assert rows[0]["product_id"] == "P004"
    assert rows[0]["negative_ratio"] == 0.8
    assert rows[0]["reviews"] == 30
