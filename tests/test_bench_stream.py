"""``python -m bench.stream --quick``, tiny: it runs on both backends and the group variant,
writes the JSON the README describes, and every review it put on a topic came out and was
stored once. No timing is asserted (figures are the benchmark's to print)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.stream import cpu_budget
from stream.config import PROJECT_ROOT
from stream.metrics import STAGES


@pytest.mark.broker
@pytest.mark.clickhouse
@pytest.mark.slow
def test_quick_run_writes_a_complete_report_with_matching_counts(tmp_path: Path) -> None:
    out = tmp_path / "stream.json"
    command = [
        sys.executable,
        "-m",
        "bench.stream",
        "--quick",
        "--events",
        "200",
        "--per-event-events",
        "12",
        "--rates",
        "50",
        "--rate-seconds",
        "2",
        "--workers",
        "2",
        "--json",
        str(out),
    ]
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "end to end / per event" in done.stdout
    report = json.loads(out.read_text())

    assert report["counts_match"] is True
    assert report["model_only"]["reviews"] > 0 and report["model_only"]["rate"] > 0
    assert set(report["backends"]) == {"native", "embedded"}
    for name, backend in report["backends"].items():
        end = backend["end_to_end"]
        assert end["events"] == 200
        assert end["processed"] == end["valid"] == end["stored"], name
        assert end["worker_exit_code"] == 0
        assert end["valid"] == report["model_only"]["reviews"]  # the same backlog
        assert backend["model_only"]["reviews"] == end["valid"]  # measured again, just before
        assert backend["model_only"]["rate"] > 0
        per_event = backend["per_event"]
        assert per_event["events"] == 12
        assert per_event["processed"] == per_event["valid"] == per_event["stored"]
        (rate,) = backend["latency"]
        assert rate["offered_rate"] == 50
        assert rate["sent"] == rate["received"] == rate["stored"] == 100
        assert 0 <= rate["p50_s"] <= rate["p99_s"] <= rate["max_s"]
        cpu = end["cpu_us_per_review"]
        assert set(cpu["stages"]) == set(STAGES)
        assert all(value >= 0 for value in cpu["stages"].values())
        assert cpu["stages"]["forward"] > 0 and cpu["stages"]["segment"] > 0
        assert cpu["worker_process"] > 0
        assert end["peak_rss_bytes"] > 0
        assert end["cold_start_ready_s"] is not None and end["cold_start_first_row_s"] > 0
        for key in ("end_to_end_to_model", "end_to_end_to_per_event"):
            assert backend[key] > 0
        budget = backend["cpu_budget"]
        assert budget["all_processes_us_per_review"] >= cpu["worker_process"]
        assert budget["cores_busy"] > 0 and budget["highest_ratio_cpu_allows"] > 0
        assert set(report["targets"][name]) == {
            "end_to_end_to_model",
            "end_to_end_to_per_event",
            "p99_at_500_s",
            "peak_rss_bytes",
            "cold_start_ready_s",
        }
    assert "clickhouse_server" in report["backends"]["native"]["end_to_end"]["cpu_us_per_review"]
    group = report["workers"]
    assert group["workers"] == 2 and group["backend"] == "native"
    assert group["processed"] == group["valid"] == group["stored"]
    assert group["worker_exit_codes"] == [0, 0]


def test_the_cpu_budget_bounds_the_ratio_by_the_cost_of_a_review() -> None:
    """2 cores: 625 + 50 + 18 µs a review over every process; the model alone at 7,658/s is
    2e6 / 7,658 = 261.2 µs of core time a review, so no rate of the worker can take
    end to end / model only past 261.2 / 693."""
    budget = cpu_budget(
        {"worker_process": 625.0, "clickhouse_server": 50.0, "broker": 18.0},
        2101.0,
        7658.0,
        cores=2,
    )
    assert budget == {
        "all_processes_us_per_review": 693.0,
        "cores_busy": 0.728,
        "rate_at_all_cores_busy": 2886.0,
        "model_core_us_per_review": 261.2,
        "highest_ratio_cpu_allows": 0.377,
    }
    embedded = cpu_budget({"worker_process": 700.0, "broker": 17.0}, 2253.0, 7793.0, cores=2)
    assert embedded["all_processes_us_per_review"] == 717.0  # chdb is inside the worker
    assert cpu_budget({}, 2101.0, 7658.0, cores=2) == {}  # no CPU sample: nothing to say
