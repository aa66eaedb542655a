"""Alert rules: pure functions from aggregate figures to findings, and the cooldown.

Nothing here does I/O. The engine (``engine.py``) reads the figures from ClickHouse,
calls these functions, and publishes what survives :func:`deduplicate`.

Three rules, each gated by a minimum volume so a handful of reviews cannot alert:

* ``negative_spike``: a product's negative ratio in the window is high in absolute terms
  AND a multiple of its own baseline ratio. The baseline is smoothed towards the ratio of
  all products (a pseudo-count prior), so a product with little or no history is compared
  with what is normal for the shop rather than with zero.
* ``complaint_surge``: the share of a product's reviews that are negative and carry
  complaint keywords (quality, breakage, leaks, fakes, returns, late delivery, ...) rises
  to a multiple of its own smoothed baseline share, with a minimum count of such reviews.
* ``category_drop``: a category's net sentiment score ((pos - neg) / total, -1..1) falls
  by at least a given amount against its baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream.config import AlertConfig

# A floor for baseline ratios so that lifts stay finite when nothing negative was seen.
RATIO_FLOOR = 0.01


class AlertKind(StrEnum):
    NEGATIVE_SPIKE = "negative_spike"
    COMPLAINT_SURGE = "complaint_surge"
    CATEGORY_DROP = "category_drop"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class SubjectType(StrEnum):
    PRODUCT = "product"
    CATEGORY = "category"


# When one subject has several findings in one evaluation, the first kind here wins.
KIND_PRIORITY = (AlertKind.NEGATIVE_SPIKE, AlertKind.COMPLAINT_SURGE, AlertKind.CATEGORY_DROP)


@dataclass(frozen=True)
class SentimentCounts:
    """Distinct reviews by model sentiment over some time range."""

    negative: int = 0
    neutral: int = 0
    positive: int = 0

    @property
    def total(self) -> int:
        return self.negative + self.neutral + self.positive

    @property
    def negative_ratio(self) -> float:
        return self.negative / self.total if self.total else 0.0

    @property
    def net_score(self) -> float:
        """(positive - negative) / total, in -1..1; 0 for no reviews."""
        return (self.positive - self.negative) / self.total if self.total else 0.0


@dataclass(frozen=True)
class ProductActivity:
    """One product's figures for the alert window and the baseline window before it."""

    product_id: str
    category: str
    window: SentimentCounts
    baseline: SentimentCounts
    window_complaint_reviews: int = 0
    baseline_complaint_reviews: int = 0
    top_complaints: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class CategoryActivity:
    category: str
    window: SentimentCounts
    baseline: SentimentCounts


@dataclass(frozen=True)
class Thresholds:
    """Rule knobs; :meth:`from_config` maps the ``alert_*`` settings."""

    min_volume: int = 20
    negative_ratio: float = 0.5
    ratio_lift: float = 2.0
    complaint_min: int = 10
    complaint_lift: float = 2.0
    category_min_volume: int = 50
    category_drop: float = 0.3
    cooldown: timedelta = timedelta(minutes=60)

    @classmethod
    def from_config(cls, alerts: AlertConfig) -> Thresholds:
        return cls(
            min_volume=alerts.alert_min_volume,
            negative_ratio=alerts.alert_negative_ratio,
            ratio_lift=alerts.alert_ratio_lift,
            complaint_min=alerts.alert_keyword_min,
            complaint_lift=alerts.alert_keyword_lift,
            category_min_volume=alerts.alert_category_min_volume,
            category_drop=alerts.alert_category_drop,
            cooldown=timedelta(minutes=alerts.alert_cooldown_minutes),
        )


@dataclass(frozen=True)
class Finding:
    """A rule that fired for one subject: an alert before dedup and sample lookup."""

    kind: AlertKind
    severity: Severity
    subject_type: SubjectType
    subject: str
    category: str
    figures: dict[str, float | int] = field(hash=False)
    top_complaints: tuple[tuple[str, int], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """The cooldown key: one open incident per subject."""
        return (self.subject_type.value, self.subject)


@dataclass(frozen=True)
class OpenAlert:
    """An alert already raised (read back from the alerts table)."""

    alert_id: str
    kind: AlertKind
    subject_type: SubjectType
    subject: str
    raised_at: datetime
    last_seen_at: datetime

    @property
    def key(self) -> tuple[str, str]:
        return (self.subject_type.value, self.subject)


@dataclass(frozen=True)
class Decision:
    """What :func:`deduplicate` decided: new incidents, and open ones seen again."""

    new: list[Finding]
    continuing: list[tuple[OpenAlert, Finding]]


def smoothed_ratio(hits: int, total: int, prior: float, weight: float) -> float:
    """``hits / total`` pulled towards ``prior`` as if ``weight`` reviews at the prior
    rate had been seen too; never below :data:`RATIO_FLOOR`."""
    ratio = (hits + prior * weight) / (total + weight) if total + weight > 0 else prior
    return max(ratio, RATIO_FLOOR)


def _round(value: float) -> float:
    return round(value, 4)


def negative_spike(
    product: ProductActivity, prior_ratio: float, thresholds: Thresholds
) -> Finding | None:
    """A product's negative ratio is high and a multiple of its own (smoothed) baseline."""
    window = product.window
    if window.total < thresholds.min_volume:
        return None
    ratio = window.negative_ratio
    baseline = smoothed_ratio(
        product.baseline.negative, product.baseline.total, prior_ratio, thresholds.min_volume
    )
    lift = ratio / baseline
    if ratio < thresholds.negative_ratio or lift < thresholds.ratio_lift:
        return None
    severity = Severity.CRITICAL if lift >= 2 * thresholds.ratio_lift else Severity.WARNING
    return Finding(
        kind=AlertKind.NEGATIVE_SPIKE,
        severity=severity,
        subject_type=SubjectType.PRODUCT,
        subject=product.product_id,
        category=product.category,
        figures={
            "window_reviews": window.total,
            "window_negative": window.negative,
            "negative_ratio": _round(ratio),
            "baseline_reviews": product.baseline.total,
            "baseline_negative": product.baseline.negative,
            "baseline_ratio": _round(baseline),
            "lift": _round(lift),
            "threshold_ratio": thresholds.negative_ratio,
            "threshold_lift": thresholds.ratio_lift,
        },
        top_complaints=product.top_complaints,
    )


def complaint_surge(
    product: ProductActivity, prior_share: float, thresholds: Thresholds
) -> Finding | None:
    """The share of a product's reviews that are negative with complaint keywords rises
    to a multiple of its own (smoothed) baseline share."""
    window = product.window
    count = product.window_complaint_reviews
    if window.total < thresholds.min_volume or count < thresholds.complaint_min:
        return None
    share = count / window.total
    baseline = smoothed_ratio(
        product.baseline_complaint_reviews,
        product.baseline.total,
        prior_share,
        thresholds.min_volume,
    )
    lift = share / baseline
    if lift < thresholds.complaint_lift:
        return None
    severity = Severity.CRITICAL if lift >= 2 * thresholds.complaint_lift else Severity.WARNING
    return Finding(
        kind=AlertKind.COMPLAINT_SURGE,
        severity=severity,
        subject_type=SubjectType.PRODUCT,
        subject=product.product_id,
        category=product.category,
        figures={
            "window_reviews": window.total,
            "complaint_reviews": count,
            "complaint_share": _round(share),
            "baseline_reviews": product.baseline.total,
            "baseline_complaint_reviews": product.baseline_complaint_reviews,
            "baseline_share": _round(baseline),
            "lift": _round(lift),
            "threshold_count": thresholds.complaint_min,
            "threshold_lift": thresholds.complaint_lift,
        },
        top_complaints=product.top_complaints,
    )


def category_drop(category: CategoryActivity, thresholds: Thresholds) -> Finding | None:
    """A category's net score falls by ``category_drop`` or more against its baseline.

    Needs volume on both sides: a drop from a baseline of nothing is not a drop.
    """
    window, baseline = category.window, category.baseline
    if window.total < thresholds.category_min_volume:
        return None
    if baseline.total < thresholds.category_min_volume:
        return None
    drop = baseline.net_score - window.net_score
    if drop < thresholds.category_drop:
        return None
    severity = Severity.CRITICAL if drop >= 2 * thresholds.category_drop else Severity.WARNING
    return Finding(
        kind=AlertKind.CATEGORY_DROP,
        severity=severity,
        subject_type=SubjectType.CATEGORY,
        subject=category.category,
        category=category.category,
        figures={
            "window_reviews": window.total,
            "window_net_score": _round(window.net_score),
            "window_negative_ratio": _round(window.negative_ratio),
            "baseline_reviews": baseline.total,
            "baseline_net_score": _round(baseline.net_score),
            "drop": _round(drop),
            "threshold_drop": thresholds.category_drop,
        },
    )


def pooled_ratio(values: Iterable[tuple[int, int]]) -> float:
    """sum(hits) / sum(total) over (hits, total) pairs; 0 when there is nothing."""
    hits = total = 0
    for h, t in values:
        hits += h
        total += t
    return hits / total if total else 0.0


def evaluate_rules(
    products: Sequence[ProductActivity],
    categories: Sequence[CategoryActivity],
    thresholds: Thresholds,
    *,
    prior_negative_ratio: float | None = None,
    prior_complaint_share: float | None = None,
) -> list[Finding]:
    """Run every rule over every subject.

    The priors (shop-wide baseline negative ratio and complaint share) default to the
    pooled baselines of ``products``; pass them when ``products`` is only the subset that
    has enough volume to alert."""
    prior_negative = (
        prior_negative_ratio
        if prior_negative_ratio is not None
        else pooled_ratio((p.baseline.negative, p.baseline.total) for p in products)
    )
    prior_complaint = (
        prior_complaint_share
        if prior_complaint_share is not None
        else pooled_ratio((p.baseline_complaint_reviews, p.baseline.total) for p in products)
    )
    findings: list[Finding] = []
    for product in products:
        for finding in (
            negative_spike(product, prior_negative, thresholds),
            complaint_surge(product, prior_complaint, thresholds),
        ):
            if finding is not None:
                findings.append(finding)
    for category in categories:
        finding = category_drop(category, thresholds)
        if finding is not None:
            findings.append(finding)
    return findings


def _rank(finding: Finding) -> tuple[int, int]:
    return (
        0 if finding.severity is Severity.CRITICAL else 1,
        KIND_PRIORITY.index(finding.kind),
    )


def deduplicate(
    findings: Sequence[Finding],
    open_alerts: Sequence[OpenAlert],
    now: datetime,
    cooldown: timedelta,
) -> Decision:
    """One incident, one alert.

    Per subject (a product or a category) keep the most important finding of this
    evaluation (critical before warning, then spike, surge, drop). If the subject has an
    alert whose condition was last seen within ``cooldown`` of ``now``, the finding
    continues that incident (the engine extends its ``last_seen_at``) instead of raising
    a new alert. So an incident that lasts all day is one alert, and a new alert needs
    ``cooldown`` of quiet first.
    """
    best: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        current = best.get(finding.key)
        if current is None or _rank(finding) < _rank(current):
            best[finding.key] = finding
    latest_open: dict[tuple[str, str], OpenAlert] = {}
    for alert in open_alerts:
        if now - alert.last_seen_at > cooldown:
            continue
        current_open = latest_open.get(alert.key)
        if current_open is None or alert.last_seen_at > current_open.last_seen_at:
            latest_open[alert.key] = alert
    new: list[Finding] = []
    continuing: list[tuple[OpenAlert, Finding]] = []
    for key, finding in best.items():
        if key in latest_open:
            continuing.append((latest_open[key], finding))
        else:
            new.append(finding)
    return Decision(new=new, continuing=continuing)
