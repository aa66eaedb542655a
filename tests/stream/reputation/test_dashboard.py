"""The Grafana dashboard's ClickHouse queries run on both backends (macros expanded the
way grafana-clickhouse-datasource expands them), against data, and its data sources are the
provisioned ones."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from stream.config import PROJECT_ROOT
from stream.sink.backend import ClickHouse
from stream.sink.store import ReviewStore
from tests.stream.reputation.scenario import Scenario

GRAFANA = PROJECT_ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "reviewpulse.json"


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def clickhouse_queries(board: dict) -> list[tuple[str, str]]:
    found = []
    for panel in board["panels"]:
        for target in panel["targets"]:
            if target["datasource"]["type"] == "grafana-clickhouse-datasource":
                found.append((panel["title"], target["rawSql"]))
    for annotation in board["annotations"]["list"]:
        found.append((annotation["name"], annotation["target"]["rawSql"]))
    return found


def expand_macros(sql: str, start: datetime, end: datetime, interval_ms: int = 300_000) -> str:
    """What the plugin sends: $__timeFilter(col) as a DateTime range, $__interval_ms."""
    low = f"toDateTime({int(start.timestamp())})"
    high = f"toDateTime({int(end.timestamp())})"
    sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 >= {low} AND \1 <= {high}", sql)
    sql = sql.replace("$__interval_ms", str(interval_ms))
    assert "$" not in sql, sql
    return sql


def test_provisioning_matches_dashboard() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "reviewpulse.yml").read_text()
    )
    uids = {d["uid"]: d["type"] for d in provisioned["datasources"]}
    assert uids["reviewpulse-clickhouse"] == "grafana-clickhouse-datasource"
    board = dashboard()
    used = {
        (t["datasource"]["uid"], t["datasource"]["type"])
        for panel in board["panels"]
        for t in panel["targets"]
    }
    assert used <= set(uids.items())
    titles = " | ".join(panel["title"] for panel in board["panels"]).lower()
    for wanted in ("sentiment over time", "worst products", "complaint keywords", "alerts"):
        assert wanted in titles
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "reviewpulse.yml").read_text()
    )
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


@pytest.mark.clickhouse
def test_dashboard_queries_run(ch: ClickHouse) -> None:
    now = datetime.now(UTC)
    scenario = Scenario(now=now, products=5, baseline_reviews=10, window_reviews=10)
    store = ReviewStore(ch)
    store.write_reviews(scenario.steady_history())
    store.write_reviews(scenario.steady_window(skip={1}))
    store.write_reviews(scenario.turned_negative(1))
    results = {}
    for title, sql in clickhouse_queries(dashboard()):
        results[title] = ch.query(expand_macros(sql, now - timedelta(hours=24), now))
    assert results["Reviews (last hour)"] == [(4 * 10 + 30,)]
    over_time = results["Sentiment over time"]
    assert sum(row[2] for row in over_time) == len(scenario.rows)
    assert {row[1] for row in over_time} == {"negative", "neutral", "positive"}
    worst = results["Worst products (last 24 h)"]
    assert worst[0][0] == Scenario.product_id(1)
    keywords = dict(results["Complaint keywords (selected range)"])
    assert keywords["漏水"] == 24 + 5 * 1 + 4 * 1  # turned + one per 20 steady reviews
    assert results["Alerts"] == []
