"""Pipeline figures from a real ``Metrics`` registry: rates and latency quantiles over the
last window, dead letters by reason."""

from __future__ import annotations

import pytest

from stream.dashboard.pipeline import LATENCY_WINDOW_S, Histogram, PipelineSampler
from stream.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    inf = float("inf")
    histogram = Histogram((0.1, 0.5, 1.0, inf), (10.0, 30.0, 40.0, 40.0), 40.0)
    assert histogram.quantile(0.25) == pytest.approx(0.1)  # rank 10: the first bucket's top
    assert histogram.quantile(0.5) == pytest.approx(0.1 + 0.4 * (20 - 10) / 20)
    assert histogram.quantile(1.0) == pytest.approx(1.0)
    assert Histogram((0.1, inf), (0.0, 5.0), 5.0).quantile(0.5) == 0.1  # in +Inf: the last bound
    assert Histogram((0.1, inf), (0.0, 0.0), 0.0).quantile(0.5) is None


def test_rates_and_latencies_cover_the_last_window_only() -> None:
    metrics, clock = Metrics(), Clock()
    sampler = PipelineSampler(metrics.registry, clock=clock)
    for _ in range(50):  # long ago: slow batches
        metrics.batch_latency.observe(4.0)
    metrics.events_consumed.inc(1000)
    metrics.events_processed.inc(990)
    metrics.events_dead_lettered.labels("malformed_json").inc(10)
    sampler.sample()
    for _ in range(int(LATENCY_WINDOW_S / 5)):  # the timer's samples, nothing happening
        clock.now += 5
        sampler.sample()
    for _ in range(12):  # the last minute: 600 consumed, 570 processed, fast batches
        clock.now += 5
        metrics.events_consumed.inc(50)
        metrics.events_processed.inc(47.5)
        metrics.events_dead_lettered.labels("text_empty").inc(2.5)
        for _ in range(10):
            metrics.batch_latency.observe(0.02)
        sampler.sample()
    clock.now += 0.1

    figures = sampler.figures()
    assert figures["reviews_per_s"] == pytest.approx(570 / 60.1, rel=1e-3)
    assert figures["consumed_per_s"] == pytest.approx(600 / 60.1, rel=1e-3)
    assert figures["processed_total"] == 1560 and figures["consumed_total"] == 1600
    assert figures["dead_letter_share"] == pytest.approx(40 / 1600)
    reasons = {d["reason"]: d for d in figures["dead_letters"]}
    assert reasons["text_empty"]["total"] == 30 and reasons["text_empty"]["recent"] == 30
    assert reasons["malformed_json"]["recent"] == 0
    assert reasons["text_empty"]["recent_share"] == pytest.approx(30 / 600)
    batch = figures["latency"]["batch"]
    assert batch["scope"] == "window" and batch["count"] == 120  # the slow ones are older
    assert 0.01 <= batch["p50"] <= 0.025 and batch["p95"] <= 0.025
    assert figures["uptime_s"] == pytest.approx(clock.now - 1000.0)


def test_first_figures_have_no_rate_yet() -> None:
    metrics = Metrics()
    metrics.end_to_end_latency.observe(3.0)
    figures = PipelineSampler(metrics.registry, clock=Clock()).figures()
    assert figures["reviews_per_s"] is None and figures["dead_letter_share"] is None
    e2e = figures["latency"]["end_to_end"]
    assert e2e["scope"] == "since_start" and e2e["count"] == 1 and 2 <= e2e["p50"] <= 5
