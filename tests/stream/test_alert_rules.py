"""deploy/prometheus/alerts.yml: well-formed, loaded by Prometheus in compose, and built only
from metrics the worker exports; with promtool on PATH (Debian: apt-get install prometheus),
also checked and unit-tested by promtool itself (deploy/prometheus/alerts_test.yml)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from stream.config import PROJECT_ROOT
from stream.metrics import Metrics

PROMETHEUS = PROJECT_ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
# Series Prometheus makes itself, not the worker.
BUILTIN = {"up"}
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "info": ("_info",),
}
NEEDED = {"lag", "dead_letter", "sink_retries", "stalled", "restart"}


def exported_series() -> set[str]:
    """Every series name the worker's /metrics can show (labelled ones before any sample)."""
    text = Metrics().exposition()[0].decode()
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE):
        base = name.removesuffix("_total") if kind == "counter" else name
        names |= {base + suffix for suffix in SAMPLE_SUFFIXES.get(kind, ("",))}
    return names


def rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_rule_is_complete_and_uses_exported_metrics() -> None:
    exported = exported_series()
    assert rules()
    for rule in rules():
        assert rule["alert"].startswith("ReviewPulse"), rule
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule
        assert rule["annotations"]["summary"], rule
        names = set(re.findall(r"\b((?:reviewpulse|process)_[a-z0-9_]+)\b", rule["expr"]))
        names |= {n for n in re.findall(r"\b([a-z_]+)\{", rule["expr"]) if n in BUILTIN}
        assert names, f"{rule['alert']} names no metric"
        unknown = names - exported - BUILTIN
        assert not unknown, f"{rule['alert']} uses metrics the worker does not export: {unknown}"


def test_the_issue_s_signals_are_all_covered() -> None:
    exprs = " ".join(rule["expr"] for rule in rules())
    covered = {
        "lag": "reviewpulse_consumer_lag_seconds" in exprs,
        "dead_letter": "reviewpulse_events_dead_lettered_total" in exprs,
        "sink_retries": "reviewpulse_sink_retries_total" in exprs,
        "stalled": "reviewpulse_batches_stalled" in exprs,
        "restart": "changes(process_start_time_seconds" in exprs,
    }
    assert {k for k, v in covered.items() if v} == NEEDED


def test_compose_loads_the_rules() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    volumes = compose["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in volumes


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_checks_and_unit_tests_the_rules() -> None:
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run(
            ["promtool", *command], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
