"""Model health for one moment: the figures from ClickHouse through the rules, and the
rolling rating-agreement gauge. Blocking: call from the ClickHouse executor.

The alert engine calls :func:`evaluate_model_health` on its timer and raises the findings
through its outbox and topic like its own (``stream.monitoring.alerts.model_health_event``
builds the event); :func:`refresh_agreement_gauge` belongs on the same timer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from model.profile import TrafficProfile
from stream.monitoring.queries import read_feedback, read_traffic, sample_review_ids
from stream.monitoring.rules import ModelHealthFinding, MonitorWindow, evaluate_health

if TYPE_CHECKING:
    from stream.config import MonitorConfig
    from stream.metrics import Metrics
    from stream.sink.backend import ClickHouse


@dataclass(frozen=True)
class ServedModel:
    """What model health needs of the served model: its version (whose traffic is checked)
    and its card's reference profile (None: an old card without one)."""

    version: str
    reference: TrafficProfile | None

    @classmethod
    def of(cls, model: Any) -> ServedModel:
        """Of a ``model.predictor.SentimentModel`` (or anything with ``version`` and,
        optionally, ``card.reference``)."""
        card = getattr(model, "card", None)
        return cls(version=model.version, reference=getattr(card, "reference", None))


def evaluate_model_health(
    clickhouse: ClickHouse,
    reference: TrafficProfile | None,
    config: MonitorConfig,
    now: datetime,
    *,
    model_version: str | None = None,
    sample_reviews: int = 0,
) -> list[ModelHealthFinding]:
    """``model_drift`` and ``feedback_drop`` findings per category for the window ending at
    ``now`` (``monitor_window_minutes``, baseline ``monitor_baseline_hours`` before it: the
    feedback and the label shares are compared with it).

    ``reference``: the served model card's profile (``ModelCard.reference``); None skips
    drift and the comparison with validation agreement. ``model_version``: read only the
    traffic that version classified (pass the served one, whose reference this is); None
    reads all. ``sample_reviews``: how many review ids each finding carries."""
    window = MonitorWindow.ending_at(
        now, config.monitor_window_minutes, config.monitor_baseline_hours
    )
    traffic, before = {}, {}
    if reference is not None:
        traffic = read_traffic(clickhouse, window.start, window.end, model_version)
        before = read_traffic(clickhouse, window.baseline_start, window.start, model_version)
    feedback = read_feedback(clickhouse, window, "category", model_version)
    findings = evaluate_health(
        traffic,
        feedback.window,
        feedback.baseline,
        reference,
        config,
        window,
        model_version,
        baseline_traffic=before,
    )
    if sample_reviews > 0:
        findings = [
            replace(f, sample_review_ids=tuple(sample_review_ids(clickhouse, f, sample_reviews)))
            for f in findings
        ]
    return findings


def refresh_agreement_gauge(
    clickhouse: ClickHouse, metrics: Metrics, config: MonitorConfig, now: datetime
) -> dict[str, float]:
    """Set ``reviewpulse_rating_agreement`` and ``reviewpulse_rated_reviews`` per model
    version from the last ``monitor_agreement_minutes`` of rating feedback (versions without
    rated reviews there are dropped from the gauges); return the agreements set."""
    window = MonitorWindow.ending_at(now, config.monitor_agreement_minutes, 0)  # no baseline
    by_version = read_feedback(clickhouse, window, "model_version").window
    metrics.rating_agreement.clear()
    metrics.rated_reviews.clear()
    agreements = {}
    for version, feedback in sorted(by_version.items()):
        metrics.rating_agreement.labels(model_version=version).set(feedback.agreement)
        metrics.rated_reviews.labels(model_version=version).set(feedback.rated)
        agreements[version] = feedback.agreement
    return agreements
