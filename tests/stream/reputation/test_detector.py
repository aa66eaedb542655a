"""The statistical decision on fixed inputs (pure)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stream.reputation.detector import (
    MAX_BASELINE_WEIGHT,
    DetectorSettings,
    assess,
    normal_range,
    shrunk_rate,
    tail_evidence,
    wilson_lower,
)

SETTINGS = DetectorSettings(
    windows=(5, 15, 60),
    evidence=(10.0, 9.0, 8.0),
    min_volume=8,
    margin=0.05,
    prior_weight=30.0,
    critical_effect=0.3,
    max_weight=300.0,
)


def one(values: list[float]) -> np.ndarray:
    return np.array([values], dtype=float)


def test_settings_need_one_evidence_per_ascending_window() -> None:
    with pytest.raises(ValueError):
        DetectorSettings(windows=(5, 15), evidence=(9.0,))
    with pytest.raises(ValueError):
        DetectorSettings(windows=(15, 5), evidence=(9.0, 7.0))
    assert SETTINGS.longest == 60
    assert DetectorSettings().max_weight == MAX_BASELINE_WEIGHT


def test_shrinkage_weighs_own_history_against_the_prior() -> None:
    assert shrunk_rate(np.array(0.0), np.array(0.0), np.array(0.2), 30.0) == pytest.approx(0.2)
    assert shrunk_rate(np.array(300.0), np.array(1000.0), np.array(0.1), 30.0) == (
        pytest.approx((300 + 3) / 1030)
    )


def test_normal_range_is_the_capped_posterior() -> None:
    # No history: Beta(6, 24) around the category's 20%; its 90% quantile is well above.
    mean, upper = normal_range(np.array(0.0), np.array(0.0), np.array(0.2), 30.0, 300.0)
    assert mean == pytest.approx(0.2) and 0.27 < upper < 0.30
    # A year of history is no more certain than 300 reviews' worth: the quantile stays put.
    year = normal_range(np.array(2e5), np.array(1e6), np.array(0.2), 30.0, 300.0)
    capped = normal_range(np.array(60.0), np.array(300.0), np.array(0.2), 0.0, 300.0)
    assert year[1] == pytest.approx(float(capped[1]), abs=1e-3)


def test_evidence_is_the_binomial_tail_in_nats() -> None:
    # k = n: P(X >= n) = p ** n.
    got = tail_evidence(one([3]), one([3]), np.array(0.3))
    assert got[0, 0] == pytest.approx(-3 * math.log(0.3))
    p = 0.2
    tail = sum(math.comb(20, k) * p**k * (1 - p) ** (20 - k) for k in range(9, 21))
    assert tail_evidence(one([9]), one([20]), np.array(p))[0, 0] == pytest.approx(-math.log(tail))


def test_no_evidence_at_or_below_the_null_rate_or_without_reviews() -> None:
    got = tail_evidence(one([2, 3, 0]), one([10, 10, 0]), np.array(0.3))
    assert got.tolist() == [[0.0, 0.0, 0.0]]


def test_wilson_lower_bound() -> None:
    lower = wilson_lower(one([0, 5, 10]), one([0, 10, 10]))
    assert lower[0, 0] == 0.0
    assert 0.3 < lower[0, 1] < 0.5
    assert 0.8 < lower[0, 2] < 1.0


def test_a_clear_rise_fires_critical_on_the_short_window() -> None:
    # 30 reviews in 5 min, 24 negative; usual 20% over 2,000 reviews of history.
    verdict = assess(
        hits=one([24, 30, 40]),
        total=one([30, 70, 250]),
        base_hits=one([400, 394, 384]),
        base_total=one([2000, 1960, 1780]),
        prior=np.array([[0.2]]),
        settings=SETTINGS,
    )
    assert verdict.fired.tolist() == [True]
    assert verdict.best.tolist() == [0]
    assert verdict.critical.tolist() == [True]
    assert verdict.normal[0, 0] == pytest.approx((400 + 6) / 2030)
    assert verdict.tolerated[0, 0] > verdict.normal[0, 0] + 0.05
    assert verdict.evidence[0, 0] > 10


def test_a_moderate_rise_is_a_warning() -> None:
    # 47% negative over 15 min (usual 16%): fires, but the rise is not surely >= 30 points.
    verdict = assess(
        hits=one([12, 42, 62]),
        total=one([30, 90, 360]),
        base_hits=one([320, 300, 250]),
        base_total=one([2000, 1940, 1670]),
        prior=np.array([[0.16]]),
        settings=SETTINGS,
    )
    assert verdict.fired.tolist() == [True]
    assert verdict.best.tolist() == [1]
    assert verdict.critical.tolist() == [False]


def test_a_handful_of_reviews_never_fires() -> None:
    # A new product: no history, 5 negative reviews out of 5 (even with a 5-review minimum).
    verdict = assess(
        hits=one([5, 5, 5]),
        total=one([5, 5, 5]),
        base_hits=one([0, 0, 0]),
        base_total=one([0, 0, 0]),
        prior=np.array([[0.2]]),
        settings=DetectorSettings(windows=(5, 15, 60), evidence=(10, 9, 8), min_volume=5),
    )
    assert verdict.fired.tolist() == [False]


def test_a_product_that_is_always_this_negative_does_not_fire() -> None:
    verdict = assess(
        hits=one([12, 36, 144]),
        total=one([30, 90, 360]),
        base_hits=one([3200, 3176, 3080]),
        base_total=one([8000, 7940, 7700]),
        prior=np.array([[0.15]]),
        settings=SETTINGS,
    )
    assert verdict.fired.tolist() == [False]


def test_the_margin_absorbs_a_small_rise_however_much_data() -> None:
    # 22% against a usual 20%, with plenty of reviews.
    verdict = assess(
        hits=one([66, 198, 792]),
        total=one([300, 900, 3600]),
        base_hits=one([20000, 20000, 20000]),
        base_total=one([100000, 100000, 100000]),
        prior=np.array([[0.2]]),
        settings=SETTINGS,
    )
    assert verdict.fired.tolist() == [False]
