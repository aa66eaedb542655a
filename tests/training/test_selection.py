"""Choosing on corpus + traffic validation (training.selection) and its use in the fusion
weight, the TF-IDF half's C, temperature and neutral band: pure functions on fixed inputs."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibrate import choose_neutral_band, fit_temperature
from training.lexical import choose_weight
from training.selection import (
    DEFAULT_RUNS,
    FineTuneRun,
    WeightedValidation,
    candidate_name,
    choose,
    describe_runs,
    parse_runs,
)


def test_each_source_carries_its_share_of_the_weight() -> None:
    traffic = np.array([False] * 90 + [True] * 10)
    weights = WeightedValidation(traffic, traffic_weight=0.5).sample_weights()
    assert weights.mean() == pytest.approx(1.0)
    assert weights[traffic].sum() == pytest.approx(weights[~traffic].sum())
    quarter = WeightedValidation(traffic, traffic_weight=0.25).sample_weights()
    assert quarter[traffic].sum() / quarter.sum() == pytest.approx(0.25)
    # One source alone: every review alike.
    assert (WeightedValidation(np.zeros(5, bool)).sample_weights() == 1).all()
    with pytest.raises(ValueError):
        WeightedValidation(traffic, traffic_weight=1.5)


def test_figures_per_source_and_weighted() -> None:
    traffic = np.array([False] * 8 + [True] * 2)
    correct = np.array([True] * 8 + [False, True])  # corpus 8/8, traffic 1/2
    figures = WeightedValidation(traffic).figures(correct, loss=np.arange(10.0))
    assert figures["corpus_accuracy"] == 1.0
    assert figures["traffic_accuracy"] == 0.5
    assert figures["weighted_accuracy"] == pytest.approx(0.75)  # half each
    assert figures["weighted_log_loss"] == pytest.approx(0.5 * 3.5 + 0.5 * 8.5)


def test_choose_takes_the_best_weighted_accuracy_above_the_corpus_floor() -> None:
    figures = {
        "corpus-best": {"corpus_accuracy": 0.95, "weighted_accuracy": 0.90},
        "traffic-best": {"corpus_accuracy": 0.93, "weighted_accuracy": 0.93},  # below floor
        "balanced": {"corpus_accuracy": 0.946, "weighted_accuracy": 0.92},
    }
    assert choose(figures, min_corpus_accuracy=0.945) == "balanced"
    assert choose(figures, min_corpus_accuracy=None) == "traffic-best"
    # Nothing above the floor: the best corpus accuracy, whatever the traffic says.
    assert choose(figures, min_corpus_accuracy=0.99) == "corpus-best"


def test_choose_breaks_ties_by_log_loss_then_order() -> None:
    tied = {
        "a": {"corpus_accuracy": 0.9, "weighted_accuracy": 0.9, "weighted_log_loss": 0.3},
        "b": {"corpus_accuracy": 0.9, "weighted_accuracy": 0.9, "weighted_log_loss": 0.2},
        "c": {"corpus_accuracy": 0.9, "weighted_accuracy": 0.9, "weighted_log_loss": 0.2},
    }
    assert choose(tied, 0.5) == "b"
    with pytest.raises(ValueError):
        choose({}, None)


def test_fine_tune_runs_parse_and_name_their_candidates() -> None:
    assert parse_runs("rule:1,0.5:2") == DEFAULT_RUNS
    assert describe_runs(DEFAULT_RUNS) == "rule:1,0.5:2"
    assert candidate_name(FineTuneRun(0.5, 2.0), 1) == "0.5:2@1"
    for bad in ("rule", "1.5:1", "0.5:0", "rule:1,rule:1", "x:1"):
        with pytest.raises(ValueError):
            parse_runs(bad)


def _two_sources(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validation of 900 corpus reviews, where the network is right and the TF-IDF half is
    noise, and 100 traffic reviews, where the network is wrong and the TF-IDF half right."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 1000)
    sign = np.where(y == 1, 1.0, -1.0)
    traffic = np.arange(1000) >= 900
    network = np.where(traffic, -1.0, 2.0) * sign + rng.normal(0, 0.5, 1000)
    lexical = np.where(traffic, 2.0 * sign + rng.normal(0, 0.5, 1000), rng.normal(0, 2, 1000))
    logits = np.stack([-network / 2, network / 2], axis=1)
    return logits, lexical, y, traffic


def test_the_fusion_weight_lets_the_traffic_count_within_the_corpus_floor() -> None:
    logits, lexical, y, traffic = _two_sources()
    pooled, _ = choose_weight(logits, lexical, y)
    free, table = choose_weight(logits, lexical, y, validation=WeightedValidation(traffic))
    floor = table[pooled]["corpus_accuracy"] - 0.02
    weighted = WeightedValidation(traffic, traffic_weight=0.5, min_corpus_accuracy=floor)
    weight, table = choose_weight(logits, lexical, y, validation=weighted)
    # Pooled, the corpus decides; weighted without a floor, the traffic pulls the weight to
    # the TF-IDF half further than the floor allows.
    assert free < weight < pooled
    assert table[free]["corpus_accuracy"] < floor <= table[weight]["corpus_accuracy"]
    assert table[weight]["traffic_accuracy"] > table[pooled]["traffic_accuracy"]
    # Every grid point above the floor scores no better, weighted.
    assert all(
        f["weighted_accuracy"] <= table[weight]["weighted_accuracy"]
        for f in table.values()
        if f["corpus_accuracy"] >= floor
    )


def test_weighted_temperature_and_band_equal_the_unweighted_ones_with_equal_weights() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    log_odds = np.where(y == 1, 1.0, -1.0) * 3 + rng.normal(0, 3, 400)
    logits = np.stack([-log_odds / 2, log_odds / 2], axis=1)
    assert fit_temperature(logits, y, np.ones(400)) == pytest.approx(fit_temperature(logits, y))
    plain = choose_neutral_band(log_odds, y == 1)
    weighted = choose_neutral_band(log_odds, y == 1, sample_weight=np.full(400, 2.0))
    assert weighted.band.half_width == plain.band.half_width
    assert weighted.share == pytest.approx(plain.share)


def test_a_weighted_band_covers_at_most_its_weighted_share() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 1000)
    log_odds = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.5, 1000)
    heavy = np.arange(1000) < 100  # a tenth of the reviews, half the weight
    weights = WeightedValidation(heavy).sample_weights()
    choice = choose_neutral_band(log_odds, y == 1, sample_weight=weights)
    inside = np.abs(log_odds) < choice.band.half_width
    assert np.average(inside, weights=weights) <= 0.1 + 1e-9
    assert choice.share == pytest.approx(np.average(inside, weights=weights))
