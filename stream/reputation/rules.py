"""Alert rules: pure functions from window counts to findings. No I/O.

The engine (``engine.py``) reads per-minute counts from ClickHouse and the simulation
harness (``bench/alerts.py``) generates them; both hand this module the same
:class:`StepCounts` for one evaluation step (an event-time moment) and get the same findings.

* ``negative_spike``: a product's share of negative reviews rose (``detector.assess``) against
  its own baseline, shrunk towards its category's share;
* ``complaint_surge``: the share of a product's reviews that are negative and carry complaint
  keywords (the curated lexicon, and the words learned per category, ``lexicon.py``) rose
  against its own baseline, shrunk towards the category's complaint share; never a ratio over
  an empty baseline;
* ``category_drop``: a category's negative share rose against its own baseline, shrunk towards
  the shop-wide share, counting only the products that did not alert themselves (one bad
  product is a product alert, not a category alert);
* ``pipeline_lag``: the oldest unprocessed input message has waited longer than a threshold.

Category priors are pooled over every product of the category, shop-wide priors over all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from stream.reputation.detector import Assessment, DetectorSettings, assess, shrunk_rate

if TYPE_CHECKING:
    from stream.config import AlertConfig


class AlertKind(StrEnum):
    NEGATIVE_SPIKE = "negative_spike"
    COMPLAINT_SURGE = "complaint_surge"
    CATEGORY_DROP = "category_drop"
    PIPELINE_LAG = "pipeline_lag"
    # Model health (stream.monitoring.rules), raised through the same engine and outbox.
    MODEL_DRIFT = "model_drift"
    FEEDBACK_DROP = "feedback_drop"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class SubjectType(StrEnum):
    PRODUCT = "product"
    CATEGORY = "category"
    PIPELINE = "pipeline"


# When one subject has several findings in one step, critical wins, then the first kind here.
KIND_PRIORITY = (
    AlertKind.NEGATIVE_SPIKE,
    AlertKind.COMPLAINT_SURGE,
    AlertKind.CATEGORY_DROP,
    AlertKind.PIPELINE_LAG,
    AlertKind.MODEL_DRIFT,
    AlertKind.FEEDBACK_DROP,
)
# Lag at this many times the threshold is critical.
CRITICAL_LAG_FACTOR = 3.0


def parse_numbers(text: str) -> tuple[float, ...]:
    """``"5,15,60"`` -> ``(5.0, 15.0, 60.0)``."""
    return tuple(float(part) for part in text.replace(" ", "").split(",") if part)


@dataclass(frozen=True)
class RuleSettings:
    """Every knob of the rules; :meth:`from_config` maps the ``alert_*`` settings."""

    detector: DetectorSettings = field(default_factory=DetectorSettings)
    baseline: timedelta = timedelta(hours=24)
    cooldown: timedelta = timedelta(minutes=60)
    lag_threshold_s: float = 600.0

    @classmethod
    def from_config(cls, alerts: AlertConfig) -> RuleSettings:
        return cls(
            detector=DetectorSettings(
                windows=tuple(int(w) for w in parse_numbers(alerts.alert_windows_minutes)),
                evidence=parse_numbers(alerts.alert_evidence),
                min_volume=alerts.alert_min_volume,
                margin=alerts.alert_margin,
                prior_weight=alerts.alert_prior_weight,
                critical_effect=alerts.alert_critical_effect,
            ),
            baseline=timedelta(hours=alerts.alert_baseline_hours),
            cooldown=timedelta(minutes=alerts.alert_cooldown_minutes),
            lag_threshold_s=alerts.alert_lag_threshold_s,
        )


@dataclass(frozen=True)
class Counts:
    """One rule's counts for ``S`` subjects on ``W`` windows, each ``(S, W)``: ``hits`` of
    ``total`` reviews in the window, and ``base_hits`` of ``base_total`` in the baseline
    before that window's start."""

    hits: np.ndarray
    total: np.ndarray
    base_hits: np.ndarray
    base_total: np.ndarray

    def take(self, rows: np.ndarray) -> Counts:
        return Counts(
            self.hits[rows], self.total[rows], self.base_hits[rows], self.base_total[rows]
        )

    def by_group(self, groups: np.ndarray, size: int) -> Counts:
        """Sums per group (``groups`` gives each row's group index)."""

        def summed(values: np.ndarray) -> np.ndarray:
            columns = [np.bincount(groups, values[:, i], size) for i in range(values.shape[1])]
            return np.stack(columns, axis=1) if columns else np.zeros((size, 0))

        return Counts(
            *(summed(v) for v in (self.hits, self.total, self.base_hits, self.base_total))
        )


@dataclass(frozen=True)
class StepCounts:
    """Everything the rules need for one evaluation step.

    ``end`` is the event time the step's windows end at (exclusive); window ``w`` covers
    ``[end - w minutes, end)`` on minute buckets, the last one possibly still filling.
    ``negative`` counts negative reviews, ``complaint`` negative reviews with complaint
    keywords; both have the same ``total``s."""

    end: datetime
    products: Sequence[str]
    categories: Sequence[str]
    negative: Counts
    complaint: Counts


@dataclass(frozen=True)
class Finding:
    """A rule that fired for one subject at one step: an alert before dedup and samples."""

    kind: AlertKind
    severity: Severity
    subject_type: SubjectType
    subject: str
    category: str
    figures: dict[str, float | int] = field(hash=False)
    end: datetime | None = None  # event time the firing window ends at
    window_minutes: int = 0
    top_complaints: tuple[tuple[str, int], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """One open incident per subject."""
        return (self.subject_type.value, self.subject)

    @property
    def window_start(self) -> datetime | None:
        return None if self.end is None else self.end - timedelta(minutes=self.window_minutes)


def rank(finding: Finding) -> tuple[int, int]:
    """Sort key: critical first, then :data:`KIND_PRIORITY`."""
    return (
        0 if finding.severity is Severity.CRITICAL else 1,
        KIND_PRIORITY.index(finding.kind),
    )


def _rate(hits: np.ndarray, total: np.ndarray) -> np.ndarray:
    return np.where(total > 0, hits / np.maximum(total, 1), 0.0)


def category_priors(
    counts: Counts, category_index: np.ndarray, n_categories: int, weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """(per-subject prior ``(S, W)``, shop-wide rate ``(W,)``): each category's baseline
    rate pooled over its subjects and shrunk towards the shop-wide rate. Where nothing has a
    baseline yet (a fresh install) the shop-wide rate falls back to all windowed data."""
    base_hits = counts.base_hits.sum(axis=0)
    base_total = counts.base_total.sum(axis=0)
    all_hits = base_hits + counts.hits[:, -1].sum()
    all_total = base_total + counts.total[:, -1].sum()
    shop = np.where(base_total > 0, _rate(base_hits, base_total), _rate(all_hits, all_total))
    per_category = counts.by_group(category_index, n_categories)
    category_rate = shrunk_rate(per_category.base_hits, per_category.base_total, shop, weight)
    return category_rate[category_index], shop


def _figures(
    counts: Counts, verdict: Assessment, row: int, prior: np.ndarray, windows: Sequence[int]
) -> dict[str, float | int]:
    best = int(verdict.best[row])
    figures: dict[str, float | int] = {
        "window_minutes": int(windows[best]),
        "window_reviews": int(counts.total[row, best]),
        "window_hits": int(counts.hits[row, best]),
        "rate": round(float(verdict.rate[row, best]), 4),
        "baseline_reviews": int(counts.base_total[row, best]),
        "baseline_hits": int(counts.base_hits[row, best]),
        "normal_rate": round(float(verdict.normal[row, best]), 4),
        "tolerated_rate": round(float(verdict.tolerated[row, best]), 4),
        "prior_rate": round(float(prior[row, best]), 4),
        "effect_lower": round(float(verdict.effect_lower[row, best]), 4),
        "evidence": round(float(verdict.evidence[row, best]), 2),
    }
    for i, minutes in enumerate(windows):
        figures[f"evidence_{minutes}m"] = round(float(verdict.evidence[row, i]), 2)
    return figures


def _findings(
    kind: AlertKind,
    subject_type: SubjectType,
    subjects: Sequence[str],
    categories: Sequence[str],
    counts: Counts,
    prior: np.ndarray,
    end: datetime,
    settings: DetectorSettings,
) -> tuple[list[Finding], np.ndarray]:
    verdict = assess(
        counts.hits, counts.total, counts.base_hits, counts.base_total, prior, settings
    )
    prior_full = np.broadcast_to(prior, counts.hits.shape)
    findings = []
    for row in np.flatnonzero(verdict.fired):
        figures = _figures(counts, verdict, row, prior_full, settings.windows)
        figures["threshold_evidence"] = settings.evidence[int(verdict.best[row])]
        figures["threshold_margin"] = settings.margin
        findings.append(
            Finding(
                kind=kind,
                severity=Severity.CRITICAL if verdict.critical[row] else Severity.WARNING,
                subject_type=subject_type,
                subject=subjects[row],
                category=categories[row],
                figures=figures,
                end=end,
                window_minutes=settings.windows[int(verdict.best[row])],
            )
        )
    return findings, verdict.fired


def evaluate_step(step: StepCounts, settings: RuleSettings) -> list[Finding]:
    """Every product and category rule at one step."""
    detector = settings.detector
    names = sorted(set(step.categories))
    index_of = {name: i for i, name in enumerate(names)}
    category_index = np.array([index_of[c] for c in step.categories], dtype=int)
    findings: list[Finding] = []
    fired = np.zeros(len(step.products), dtype=bool)
    for kind, counts in (
        (AlertKind.NEGATIVE_SPIKE, step.negative),
        (AlertKind.COMPLAINT_SURGE, step.complaint),
    ):
        prior, _ = category_priors(counts, category_index, len(names), detector.prior_weight)
        found, hit = _findings(
            kind,
            SubjectType.PRODUCT,
            step.products,
            step.categories,
            counts,
            prior,
            step.end,
            detector,
        )
        findings.extend(found)
        fired |= hit
    if len(names):
        quiet = np.flatnonzero(~fired)
        per_category = step.negative.take(quiet).by_group(category_index[quiet], len(names))
        _, shop = category_priors(step.negative, category_index, len(names), detector.prior_weight)
        found, _ = _findings(
            AlertKind.CATEGORY_DROP,
            SubjectType.CATEGORY,
            names,
            names,
            per_category,
            np.broadcast_to(shop, per_category.hits.shape),
            step.end,
            detector,
        )
        findings.extend(found)
    return findings


def pipeline_lag(
    lag_s: float | None, subject: str, at: datetime, settings: RuleSettings, *, messages: int = 0
) -> Finding | None:
    """The consumer is behind: its oldest unprocessed input message waited ``lag_s``."""
    if lag_s is None or lag_s < settings.lag_threshold_s:
        return None
    critical = lag_s >= CRITICAL_LAG_FACTOR * settings.lag_threshold_s
    return Finding(
        kind=AlertKind.PIPELINE_LAG,
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        subject_type=SubjectType.PIPELINE,
        subject=subject,
        category="",
        figures={
            "lag_seconds": round(float(lag_s), 1),
            "unprocessed_messages": int(messages),
            "threshold_seconds": settings.lag_threshold_s,
        },
        end=at,
    )
