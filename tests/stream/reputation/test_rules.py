"""The alert rules on fixed inputs (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from stream.config import AlertConfig
from stream.reputation.detector import DetectorSettings
from stream.reputation.rules import (
    AlertKind,
    Counts,
    RuleSettings,
    Severity,
    StepCounts,
    SubjectType,
    category_priors,
    evaluate_step,
    parse_numbers,
    pipeline_lag,
)

END = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SETTINGS = RuleSettings(
    detector=DetectorSettings(
        windows=(5, 15, 60),
        evidence=(9.0, 7.0, 6.0),
        min_volume=10,
        margin=0.05,
        prior_weight=30.0,
        critical_effect=0.3,
        max_weight=300.0,
    ),
    baseline=timedelta(hours=24),
    cooldown=timedelta(minutes=60),
    lag_threshold_s=600.0,
)


def test_settings_come_from_the_alert_config() -> None:
    alerts = AlertConfig(
        alert_windows_minutes="5, 15,60",
        alert_evidence="9,7,6",
        alert_min_volume=10,
        alert_margin=0.05,
        alert_prior_weight=30,
        alert_critical_effect=0.3,
        alert_baseline_hours=24,
        alert_cooldown_minutes=60,
        alert_lag_threshold_s=600,
    )
    settings = RuleSettings.from_config(alerts)
    assert settings.detector.windows == (5, 15, 60)
    assert settings.detector.evidence == (9.0, 7.0, 6.0)
    assert settings.detector.min_volume == 10 and settings.detector.margin == 0.05
    assert settings.cooldown == timedelta(minutes=60)
    assert settings.lag_threshold_s == 600
    assert parse_numbers(" 1, 2.5 ,3") == (1.0, 2.5, 3.0)


def test_config_refuses_mismatched_windows() -> None:
    with pytest.raises(ValueError, match="one value per"):
        AlertConfig(alert_windows_minutes="5,15,60", alert_evidence="9,7")
    with pytest.raises(ValueError, match="ascending"):
        AlertConfig(alert_windows_minutes="15,5", alert_evidence="9,7")


def steady(n: int, rate: float, per_window: tuple[int, ...], history: int) -> list[list[int]]:
    """Rows of [window hits..., window totals..., base hits..., base totals...]."""
    hits = [round(w * rate) for w in per_window]
    bases = [history - w for w in per_window]
    return [[*hits, *per_window, *(round(b * rate) for b in bases), *bases] for _ in range(n)]


def counts(rows: list[list[float]]) -> Counts:
    a = np.array(rows, dtype=float)
    w = a.shape[1] // 4
    return Counts(a[:, :w], a[:, w : 2 * w], a[:, 2 * w : 3 * w], a[:, 3 * w :])


def step(
    negative: list[list[float]], complaint: list[list[float]], categories: list[str]
) -> StepCounts:
    products = [f"p{i}" for i in range(len(categories))]
    return StepCounts(END, products, categories, counts(negative), counts(complaint))


WINDOWS = (30, 90, 360)  # reviews in the 5, 15 and 60 minute windows at 6 a minute


def shop(turned: list[float] | None = None, turned_complaints: list[float] | None = None):
    """20 steady products at 16% negative (4% complaints), two categories; product 0 may
    be given other window counts."""
    negative = steady(20, 0.16, WINDOWS, 8640)
    complaint = steady(20, 0.04, WINDOWS, 8640)
    if turned is not None:
        negative[0][:3] = turned
    if turned_complaints is not None:
        complaint[0][:3] = turned_complaints
    categories = ["手机" if i % 2 else "衣服" for i in range(20)]
    return negative, complaint, categories


def test_a_steady_shop_raises_nothing() -> None:
    assert evaluate_step(step(*shop()), SETTINGS) == []


def test_a_product_turning_negative_raises_one_product_finding_per_rule() -> None:
    findings = evaluate_step(step(*shop([24, 38, 82], [20, 22, 30])), SETTINGS)
    assert {(f.kind, f.subject) for f in findings} == {
        (AlertKind.NEGATIVE_SPIKE, "p0"),
        (AlertKind.COMPLAINT_SURGE, "p0"),
    }
    spike = next(f for f in findings if f.kind is AlertKind.NEGATIVE_SPIKE)
    assert spike.severity is Severity.CRITICAL
    assert spike.subject_type is SubjectType.PRODUCT and spike.category == "衣服"
    assert spike.window_minutes == 5 and spike.end == END
    assert spike.window_start == END - timedelta(minutes=5)
    f = spike.figures
    assert (f["window_minutes"], f["window_reviews"], f["window_hits"]) == (5, 30, 24)
    assert f["rate"] == 0.8
    assert f["normal_rate"] == pytest.approx(0.16, abs=1e-3)
    assert f["evidence"] >= f["threshold_evidence"] == 9.0
    assert set(f) >= {"evidence_5m", "evidence_15m", "evidence_60m", "effect_lower"}


def test_the_category_does_not_alert_for_its_alerting_product() -> None:
    # Product 0 alone drags 衣服 up; the category rule leaves it out, so nothing else fires.
    findings = evaluate_step(step(*shop([30, 90, 200], [4, 12, 14])), SETTINGS)
    assert {f.kind for f in findings} == {AlertKind.NEGATIVE_SPIKE}


def test_a_whole_category_turning_raises_a_category_drop() -> None:
    negative, complaint, categories = shop()
    for i in range(0, 20, 2):  # every 衣服 product 16% -> 35%: none alerts on its own
        negative[i][:3] = [11, 32, 100]
    findings = evaluate_step(step(negative, complaint, categories), SETTINGS)
    assert [(f.kind, f.subject_type, f.subject) for f in findings] == [
        (AlertKind.CATEGORY_DROP, SubjectType.CATEGORY, "衣服")
    ]
    assert findings[0].figures["window_reviews"] >= 300


def test_complaints_are_judged_against_the_category_not_an_empty_baseline() -> None:
    # A product with no complaint history at all and 11 complaint reviews of 180: its own
    # baseline share is 0, but the category's 4% is what it is compared with.
    negative, complaint, categories = shop()
    complaint[3] = [3, 6, 11, 30, 90, 180, 0, 0, 0, 8610, 8550, 8280]
    assert evaluate_step(step(negative, complaint, categories), SETTINGS) == []


def test_a_new_product_with_three_negative_reviews_raises_nothing() -> None:
    negative, complaint, categories = shop()
    negative.append([3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0])
    complaint.append([3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0])
    assert evaluate_step(step(negative, complaint, [*categories, "手机"]), SETTINGS) == []


def test_category_priors_fall_back_to_the_windows_on_a_fresh_install() -> None:
    fresh = Counts(
        hits=np.array([[2.0, 5.0], [8.0, 15.0]]),
        total=np.array([[10.0, 30.0], [10.0, 30.0]]),
        base_hits=np.zeros((2, 2)),
        base_total=np.zeros((2, 2)),
    )
    prior, shop_rate = category_priors(fresh, np.array([0, 0]), 1, 30.0)
    assert shop_rate.tolist() == [pytest.approx(20 / 60)] * 2
    assert prior.tolist() == [[pytest.approx(20 / 60)] * 2] * 2


def test_pipeline_lag() -> None:
    assert pipeline_lag(None, "review.created", END, SETTINGS) is None
    assert pipeline_lag(599.0, "review.created", END, SETTINGS) is None
    warning = pipeline_lag(900.0, "review.created", END, SETTINGS, messages=4000)
    assert warning is not None and warning.severity is Severity.WARNING
    assert warning.kind is AlertKind.PIPELINE_LAG and warning.subject_type is SubjectType.PIPELINE
    assert warning.figures == {
        "lag_seconds": 900.0,
        "unprocessed_messages": 4000,
        "threshold_seconds": 600.0,
    }
    critical = pipeline_lag(1800.0, "review.created", END, SETTINGS)
    assert critical is not None and critical.severity is Severity.CRITICAL
