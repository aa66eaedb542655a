"""Model-health rules: pure functions from window figures to findings. No I/O.

* ``model_drift``: a category's traffic in the window moved away from the model card's
  reference profile (validation time; the category's own when the card has one, else the
  whole, ``TrafficProfile.for_category``): PSI of the confidence histogram or of the
  text-length histogram over its threshold, or the neutral-band share or the share of unknown
  tokens risen by more than its threshold; or its predicted label shares moved (PSI) against
  the category's own traffic in the baseline window before it. Label shares are not judged
  against the card: its validation split is class-balanced by construction, while a shop's
  traffic is mostly positive, so that PSI measures the shop's class mix (0.4-1.0 on
  undrifted corpus traffic at 85% positive), not the model; it is reported as
  ``label_psi_reference``.
* ``feedback_drop``: a category's agreement with clear ratings (1-2 or 4-5 stars; a neutral
  prediction counts as a miss) fell against its own baseline window, or against the model
  card's validation agreement (:attr:`model.profile.TrafficProfile.agreement`, the
  category's own when there is one).

Each rule needs volume first (``monitor_min_reviews``, ``monitor_min_rated``): PSI over a few
dozen reviews is noise. A finding is critical when one of its figures is past twice its
threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from model.labels import NEUTRAL, SENTIMENTS
from model.profile import TrafficProfile, histogram_psi, label_psi

if TYPE_CHECKING:
    from stream.config import MonitorConfig

MODEL_DRIFT = "model_drift"
FEEDBACK_DROP = "feedback_drop"
WARNING = "warning"
CRITICAL = "critical"
SUBJECT_TYPE = "category"


@dataclass(frozen=True)
class MonitorWindow:
    """The evaluated window ``[start, end)`` and the baseline ``[baseline_start, start)``."""

    start: datetime
    end: datetime
    baseline_start: datetime

    @classmethod
    def ending_at(cls, now: datetime, minutes: int, baseline_hours: int) -> MonitorWindow:
        """Minute-aligned window that includes ``now``'s (still filling) minute."""
        end = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = end - timedelta(minutes=minutes)
        return cls(start=start, end=end, baseline_start=start - timedelta(hours=baseline_hours))

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


@dataclass(frozen=True)
class WindowTraffic:
    """One category's traffic in a window: its profile, and the tokens counted (0: its rows
    were stored without token counts, so its unknown-token share is not known)."""

    profile: TrafficProfile
    tokens: int


@dataclass(frozen=True)
class Feedback:
    """Distinct rated reviews by (predicted label, rated label): a confusion matrix."""

    confusion: Mapping[tuple[str, str], int] = field(default_factory=dict, hash=False)

    def count(self, predicted: str | None = None, rated: str | None = None) -> int:
        return sum(
            n
            for (p, r), n in self.confusion.items()
            if (predicted is None or p == predicted) and (rated is None or r == rated)
        )

    @property
    def rated(self) -> int:
        return self.count()

    @property
    def agreeing(self) -> int:
        return sum(self.count(label, label) for label in SENTIMENTS)

    @property
    def agreement(self) -> float:
        """Share of rated reviews whose prediction is the rated label; 0 without any."""
        return self.agreeing / self.rated if self.rated else 0.0

    @property
    def clear_rated(self) -> int:
        """Reviews rated 1-2 or 4-5 stars."""
        return self.rated - self.count(rated=NEUTRAL)

    @property
    def clear_agreeing(self) -> int:
        return self.agreeing - self.count(NEUTRAL, NEUTRAL)

    @property
    def clear_agreement(self) -> float:
        """Agreement over clearly rated reviews (a neutral prediction is a miss): comparable
        with a two-class model's validation agreement; 0 without any."""
        return self.clear_agreeing / self.clear_rated if self.clear_rated else 0.0

    @property
    def neutral_but_rated_clear(self) -> int:
        return self.count(predicted=NEUTRAL) - self.count(NEUTRAL, NEUTRAL)


@dataclass(frozen=True)
class ModelHealthFinding:
    """A model-health rule that fired for one category."""

    kind: str  # MODEL_DRIFT | FEEDBACK_DROP
    severity: str  # WARNING | CRITICAL
    category: str
    model_version: str | None  # the version whose traffic was checked; None: all versions
    window: MonitorWindow
    figures: dict[str, float | int] = field(hash=False)
    reasons: tuple[str, ...]  # the checks that tripped, e.g. ("label_psi", "neutral_share")
    message: str
    sample_review_ids: tuple[str, ...] = ()

    @property
    def subject_type(self) -> str:
        return SUBJECT_TYPE

    @property
    def subject(self) -> str:
        return self.category

    @property
    def key(self) -> tuple[str, str, str]:
        """The incident key: one open incident per kind and category (each model-health kind
        has its own lane, ``stream.reputation.incidents.incident_key``)."""
        return (self.kind, SUBJECT_TYPE, self.category)


def _round(value: float) -> float:
    return round(float(value), 4)


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%" if value < 0.1 else f"{100 * value:.0f}%"


def _version(model_version: str | None) -> str:
    return f"model {model_version}" if model_version else "the model"


@dataclass(frozen=True)
class DriftCheck:
    """One drift measure of a window against the reference, and its threshold."""

    name: str  # label_psi, confidence_psi, length_psi, neutral_share, unknown_token_share
    value: float  # a PSI, or for a share its rise over the reference's
    threshold: float
    text: str  # how it reads in a message

    @property
    def tripped(self) -> bool:
        return self.value >= self.threshold

    @property
    def critical(self) -> bool:
        return self.value >= 2 * self.threshold


def drift_checks(
    traffic: WindowTraffic,
    reference: TrafficProfile,
    config: MonitorConfig,
    baseline: WindowTraffic | None = None,
) -> list[DriftCheck]:
    """Every drift measure of a window against the reference, and its label shares against
    the category's ``baseline`` traffic (when that has ``monitor_min_reviews``). Histograms are
    compared only over the same bins (a card written with other edges skips them); the
    unknown-token share only when the window counted tokens."""
    live = traffic.profile
    checks = []
    if baseline is not None and baseline.profile.reviews >= config.monitor_min_reviews:
        value = label_psi(baseline.profile.label_shares, live.label_shares)
        checks.append(
            DriftCheck(
                "label_psi",
                value,
                config.monitor_label_psi,
                f"label PSI {value:.2f} against the {baseline.profile.reviews} reviews before",
            )
        )
    if live.confidence.edges == reference.confidence.edges:
        value = histogram_psi(reference.confidence, live.confidence)
        checks.append(
            DriftCheck(
                "confidence_psi",
                value,
                config.monitor_confidence_psi,
                f"confidence PSI {value:.2f}",
            )
        )
    if live.text_length.edges == reference.text_length.edges:
        value = histogram_psi(reference.text_length, live.text_length)
        checks.append(
            DriftCheck(
                "length_psi", value, config.monitor_length_psi, f"text-length PSI {value:.2f}"
            )
        )
    neutral, expected = live.neutral_share, reference.neutral_share
    checks.append(
        DriftCheck(
            "neutral_share",
            neutral - expected,
            config.monitor_neutral_rise,
            f"neutral share {_percent(neutral)} (reference {_percent(expected)})",
        )
    )
    if traffic.tokens > 0:
        unknown, expected = live.unknown_token_share, reference.unknown_token_share
        checks.append(
            DriftCheck(
                "unknown_token_share",
                unknown - expected,
                config.monitor_unknown_rise,
                f"unknown tokens {_percent(unknown)} (reference {_percent(expected)})",
            )
        )
    return checks


def drift_figures(
    traffic: WindowTraffic,
    reference: TrafficProfile,
    checks: Sequence[DriftCheck],
    baseline: WindowTraffic | None = None,
) -> dict[str, float | int]:
    """The figures of a drift finding: the window's and the reference's values, the PSIs,
    each check's threshold, and the label PSI against the card (not judged, see above)."""
    live = traffic.profile
    figures: dict[str, float | int] = {
        "window_reviews": live.reviews,
        "baseline_reviews": baseline.profile.reviews if baseline is not None else 0,
        "neutral_share": _round(live.neutral_share),
        "reference_neutral_share": _round(reference.neutral_share),
        "label_psi_reference": _round(label_psi(reference.label_shares, live.label_shares)),
    }
    if traffic.tokens > 0:
        figures["unknown_token_share"] = _round(live.unknown_token_share)
        figures["reference_unknown_token_share"] = _round(reference.unknown_token_share)
    for check in checks:
        if check.name.endswith("_psi"):
            figures[check.name] = _round(check.value)
        figures[f"threshold_{check.name}"] = check.threshold
    return figures


def drift_finding(
    category: str,
    traffic: WindowTraffic,
    reference: TrafficProfile,
    config: MonitorConfig,
    window: MonitorWindow,
    model_version: str | None = None,
    baseline: WindowTraffic | None = None,
) -> ModelHealthFinding | None:
    """``model_drift`` for one category's window traffic against the card's reference (the
    category's own when the reference has one, else the whole) and, for its label shares,
    against its ``baseline`` traffic."""
    if traffic.profile.reviews < config.monitor_min_reviews:
        return None
    own = reference.for_category(category)
    checks = drift_checks(traffic, own, config, baseline)
    tripped = [check for check in checks if check.tripped]
    if not tripped:
        return None
    what = ", ".join(check.text for check in tripped)
    figures = drift_figures(traffic, own, checks, baseline)
    figures["reference_reviews"] = own.reviews
    figures["category_reference"] = int(own is not reference)
    against = (
        f"{_version(model_version)}'s reference for {category}"
        if own is not reference
        else f"{_version(model_version)}'s overall reference ({category} has none of its own)"
    )
    return ModelHealthFinding(
        kind=MODEL_DRIFT,
        severity=CRITICAL if any(check.critical for check in tripped) else WARNING,
        category=category,
        model_version=model_version,
        window=window,
        figures=figures,
        reasons=tuple(check.name for check in tripped),
        message=(
            f"category {category}: traffic drifted from {against} in the last "
            f"{window.minutes} min ({traffic.profile.reviews} reviews): {what}"
        ),
    )


def feedback_finding(
    category: str,
    live: Feedback,
    baseline: Feedback | None,
    reference: TrafficProfile | None,
    config: MonitorConfig,
    window: MonitorWindow,
    model_version: str | None = None,
) -> ModelHealthFinding | None:
    """``feedback_drop`` for one category: its clear-rating agreement in the window against
    its baseline (when the baseline has ``monitor_min_rated`` clearly rated reviews) and
    against the model card's validation agreement (the category's own, else the whole's; when
    the card has one); the larger drop counts."""
    if live.clear_rated < config.monitor_min_rated:
        return None
    agreement = live.clear_agreement
    figures: dict[str, float | int] = {
        "window_rated": live.rated,
        "window_clear_rated": live.clear_rated,
        "agreement": _round(live.agreement),
        "clear_agreement": _round(agreement),
        "neutral_but_rated_clear": live.neutral_but_rated_clear,
        "threshold_drop": config.monitor_feedback_drop,
    }
    drops: dict[str, tuple[float, str]] = {}
    if baseline is not None and baseline.clear_rated >= config.monitor_min_rated:
        expected = baseline.clear_agreement
        figures |= {
            "baseline_clear_rated": baseline.clear_rated,
            "baseline_agreement": _round(expected),
        }
        drops["baseline"] = (expected - agreement, f"the category's baseline {_percent(expected)}")
    own = reference.for_category(category) if reference is not None else None
    if own is not None and own.agreement is not None:
        expected = own.agreement
        figures["reference_agreement"] = _round(expected)
        scope = f" on {category}" if own is not reference else ""
        drops["reference"] = (
            expected - agreement,
            f"the model card's validation agreement{scope} {_percent(expected)}",
        )
    if not drops:
        return None
    against, (drop, expected_text) = max(drops.items(), key=lambda item: item[1][0])
    figures["drop"] = _round(drop)
    if drop < config.monitor_feedback_drop:
        return None
    critical = drop >= 2 * config.monitor_feedback_drop
    return ModelHealthFinding(
        kind=FEEDBACK_DROP,
        severity=CRITICAL if critical else WARNING,
        category=category,
        model_version=model_version,
        window=window,
        figures=figures,
        reasons=(against,),
        message=(
            f"category {category}: {_version(model_version)} agrees with {_percent(agreement)} "
            f"of clear ratings in the last {window.minutes} min ({live.clear_rated} rated 1-2 "
            f"or 4-5 stars), {100 * drop:.0f} points below {expected_text}"
        ),
    )


def evaluate_health(
    traffic: Mapping[str, WindowTraffic],
    feedback: Mapping[str, Feedback],
    baseline_feedback: Mapping[str, Feedback],
    reference: TrafficProfile | None,
    config: MonitorConfig,
    window: MonitorWindow,
    model_version: str | None = None,
    baseline_traffic: Mapping[str, WindowTraffic] | None = None,
) -> list[ModelHealthFinding]:
    """Every model-health rule over every category, categories in name order, drift before
    feedback. Without a reference only ``feedback_drop`` against the baseline can fire."""
    findings: list[ModelHealthFinding] = []
    before = baseline_traffic or {}
    for category in sorted(set(traffic) | set(feedback)):
        if reference is not None and category in traffic:
            found = drift_finding(
                category,
                traffic[category],
                reference,
                config,
                window,
                model_version,
                before.get(category),
            )
            if found is not None:
                findings.append(found)
        if category in feedback:
            found = feedback_finding(
                category,
                feedback[category],
                baseline_feedback.get(category),
                reference,
                config,
                window,
                model_version,
            )
            if found is not None:
                findings.append(found)
    return findings
