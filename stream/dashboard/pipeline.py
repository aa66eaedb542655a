"""Pipeline figures for the live page, from the worker's own Prometheus metrics.

Counters and histograms only ever grow, so a rate or a latency quantile "now" is the
difference between two snapshots. :class:`PipelineSampler` keeps a snapshot every few
seconds (the worker's timer calls :meth:`PipelineSampler.sample`) for a few minutes, and
:meth:`PipelineSampler.figures` reads rates over the last minute and latency quantiles over
the last five, the way Prometheus' ``rate`` and ``histogram_quantile`` would.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

RATE_WINDOW_S = 60.0
LATENCY_WINDOW_S = 300.0
SAMPLE_EVERY_S = 5.0
# Counters the page reads, by their short name (Prometheus names end in _total).
COUNTERS = {
    "consumed": "reviewpulse_events_consumed_total",
    "processed": "reviewpulse_events_processed_total",
    "dead_lettered": "reviewpulse_events_dead_lettered_total",
    "alerts_raised": "reviewpulse_alerts_raised_total",
    "sink_retries": "reviewpulse_sink_retries_total",
}
HISTOGRAMS = {
    "batch": "reviewpulse_batch_latency_seconds",
    "end_to_end": "reviewpulse_end_to_end_latency_seconds",
    "model": "reviewpulse_model_latency_seconds",
    "clickhouse_insert": "reviewpulse_clickhouse_insert_latency_seconds",
}
GAUGES = {
    "lag_seconds": "reviewpulse_pipeline_lag_seconds",
    "dead_letter_limit_share": "reviewpulse_dead_letter_share",
}


@dataclass(frozen=True)
class Histogram:
    """One histogram's cumulative bucket counts (upper bounds ascending, +Inf last)."""

    bounds: tuple[float, ...]
    counts: tuple[float, ...]
    total: float

    def minus(self, earlier: Histogram | None) -> Histogram:
        if earlier is None or earlier.bounds != self.bounds:
            return self
        return Histogram(
            self.bounds,
            tuple(a - b for a, b in zip(self.counts, earlier.counts, strict=True)),
            self.total - earlier.total,
        )

    def quantile(self, q: float) -> float | None:
        """Linear interpolation inside the bucket that holds the ``q`` quantile (as
        Prometheus' ``histogram_quantile``); None without observations. A quantile in the
        +Inf bucket is reported as the largest finite bound."""
        if self.total <= 0:
            return None
        rank = q * self.total
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in zip(self.bounds, self.counts, strict=True):
            if count >= rank:
                if math.isinf(bound):
                    return lower_bound
                inside = count - lower_count
                share = (rank - lower_count) / inside if inside > 0 else 1.0
                return lower_bound + (bound - lower_bound) * share
            lower_bound, lower_count = bound, count
        return lower_bound


@dataclass(frozen=True)
class Snapshot:
    """Every value the page reads, at one moment (``at``: monotonic seconds)."""

    at: float
    counters: Mapping[str, Mapping[tuple[tuple[str, str], ...], float]]
    histograms: Mapping[str, Histogram]
    gauges: Mapping[str, float]

    @classmethod
    def of(cls, registry: CollectorRegistry, at: float) -> Snapshot:
        samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        for family in registry.collect():
            for sample in family.samples:
                labels = tuple(sorted(sample.labels.items()))
                samples.setdefault(sample.name, {})[labels] = sample.value
        counters = {short: samples.get(name, {}) for short, name in COUNTERS.items()}
        histograms = {}
        for short, name in HISTOGRAMS.items():
            buckets = sorted(
                (float(dict(labels)["le"]), value)
                for labels, value in samples.get(f"{name}_bucket", {}).items()
            )
            histograms[short] = Histogram(
                tuple(b for b, _ in buckets),
                tuple(c for _, c in buckets),
                samples.get(f"{name}_count", {}).get((), 0.0),
            )
        gauges = {short: samples.get(name, {}).get((), 0.0) for short, name in GAUGES.items()}
        return cls(at, counters, histograms, gauges)

    def total(self, counter: str) -> float:
        return sum(self.counters[counter].values())

    def by_label(self, counter: str, label: str) -> dict[str, float]:
        found: dict[str, float] = {}
        for labels, value in self.counters[counter].items():
            key = dict(labels).get(label, "")
            found[key] = found.get(key, 0.0) + value
        return found


class PipelineSampler:
    """Snapshots of the worker's metrics over the last few minutes, and the page's
    pipeline figures from them."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], float] = time.monotonic,
        keep_s: float = LATENCY_WINDOW_S + 2 * SAMPLE_EVERY_S,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.started = clock()
        self.keep_s = keep_s
        self.snapshots: deque[Snapshot] = deque()

    def sample(self) -> Snapshot:
        """Take a snapshot now and forget the ones older than ``keep_s``."""
        snapshot = Snapshot.of(self.registry, self.clock())
        self.snapshots.append(snapshot)
        while self.snapshots and snapshot.at - self.snapshots[0].at > self.keep_s:
            self.snapshots.popleft()
        return snapshot

    def _since(self, now: Snapshot, window_s: float) -> Snapshot | None:
        """The oldest kept snapshot inside the window before ``now`` (None: none older)."""
        for snapshot in self.snapshots:
            if snapshot is not now and now.at - snapshot.at <= window_s + SAMPLE_EVERY_S / 2:
                return snapshot
        return None

    def figures(self) -> dict[str, Any]:
        """The figures as of now against the kept snapshots (the snapshot taken here is not
        kept: only the timer adds to the history, so requests cannot grow it)."""
        now = Snapshot.of(self.registry, self.clock())
        recent = self._since(now, RATE_WINDOW_S)
        slow = self._since(now, LATENCY_WINDOW_S)
        elapsed = now.at - recent.at if recent is not None else 0.0

        def rate(counter: str) -> float | None:
            if recent is None or elapsed <= 0:
                return None
            return (now.total(counter) - recent.total(counter)) / elapsed

        consumed = now.total("consumed")
        recent_consumed = consumed - recent.total("consumed") if recent else None
        dead = now.by_label("dead_lettered", "reason")
        dead_before = recent.by_label("dead_lettered", "reason") if recent else {}
        dead_letters = [
            {
                "reason": reason,
                "total": int(total),
                "share": total / consumed if consumed else None,
                "recent": int(total - dead_before.get(reason, 0.0)) if recent else None,
                "recent_share": (
                    (total - dead_before.get(reason, 0.0)) / recent_consumed
                    if recent_consumed
                    else None
                ),
            }
            for reason, total in sorted(dead.items(), key=lambda item: -item[1])
            if total > 0
        ]
        return {
            "uptime_s": now.at - self.started,
            "rate_window_s": elapsed,
            "latency_window_s": now.at - slow.at if slow is not None else now.at - self.started,
            "reviews_per_s": rate("processed"),
            "consumed_per_s": rate("consumed"),
            "consumed_total": int(consumed),
            "processed_total": int(now.total("processed")),
            "dead_lettered_total": int(sum(dead.values())),
            "dead_letter_share": sum(dead.values()) / consumed if consumed else None,
            "dead_letters": dead_letters,
            "dead_letter_limit_share": now.gauges["dead_letter_limit_share"],
            "lag_seconds": now.gauges["lag_seconds"],
            "sink_retries": {k: int(v) for k, v in now.by_label("sink_retries", "step").items()},
            "alerts_raised": {k: int(v) for k, v in now.by_label("alerts_raised", "kind").items()},
            "latency": {
                name: latency(now.histograms[name], slow.histograms[name] if slow else None)
                for name in HISTOGRAMS
            },
        }


def latency(now: Histogram, earlier: Histogram | None) -> dict[str, Any]:
    """p50/p95/p99 seconds over the window (since start when there is no earlier
    snapshot), and how many observations that was."""
    window = now.minus(earlier)
    if window.total <= 0 and earlier is not None:
        window = now  # nothing in the window: show the figures since start, marked so
        scope = "since_start"
    else:
        scope = "window" if earlier is not None else "since_start"
    return {
        "p50": window.quantile(0.5),
        "p95": window.quantile(0.95),
        "p99": window.quantile(0.99),
        "count": int(window.total),
        "scope": scope,
    }
