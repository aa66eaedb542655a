import numpy as np
import pytest

from model.neutral import softmax
from training.calibrate import choose_neutral_band, expected_calibration_error, fit_temperature


def _calibrated_sample(n: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    log_odds = rng.normal(0, 3, n)
    positive = rng.random(n) < 1 / (1 + np.exp(-log_odds))
    return log_odds, positive


def test_temperature_recovers_an_overconfident_model() -> None:
    log_odds, positive = _calibrated_sample()
    logits = np.stack([-log_odds, log_odds], axis=1) * 1.5  # true temperature 3 on the margin
    temperature = fit_temperature(logits, positive.astype(int))
    assert temperature == pytest.approx(3.0, rel=0.1)


def test_ece_is_small_when_calibrated_and_large_when_not() -> None:
    log_odds, positive = _calibrated_sample()
    logits = np.stack([-log_odds / 2, log_odds / 2], axis=1)
    assert expected_calibration_error(softmax(logits), positive.astype(int)) < 0.02
    assert expected_calibration_error(softmax(logits * 4), positive.astype(int)) > 0.05


def test_neutral_band_holds_the_unreliable_reviews() -> None:
    log_odds, positive = _calibrated_sample()
    choice = choose_neutral_band(log_odds, positive, max_accuracy=0.75, max_share=0.2)
    assert choice.band.half_width > 0
    assert choice.accuracy_inside <= 0.75
    assert choice.accuracy_outside > choice.accuracy_inside
    assert choice.share <= 0.2
    inside = np.abs(log_odds) < choice.band.half_width
    assert inside.mean() == pytest.approx(choice.share)


def test_no_band_when_the_model_is_never_unsure() -> None:
    log_odds = np.concatenate([np.full(500, 8.0), np.full(500, -8.0)])
    choice = choose_neutral_band(log_odds, log_odds > 0)
    assert choice.band.half_width == 0 and choice.share == 0
