"""Calibration on validation data: temperature scaling, expected calibration error, and the
neutral band served for two-class models (see :mod:`model.neutral`)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from model.card import NeutralBandCard
from model.neutral import NeutralBand, softmax


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None
) -> float:
    """The temperature minimising validation negative log-likelihood (grid, then refine),
    each review weighted by ``sample_weight`` (None: alike)."""
    labels = np.asarray(labels)

    def nll(t: float) -> float:
        probs = softmax(logits, t)
        rows = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1))
        return float(np.average(rows, weights=sample_weight))

    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 121))
    best = min(grid, key=nll)
    fine = np.linspace(best * 0.9, best * 1.1, 41)
    return float(min(fine, key=nll))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-label confidence, equal-width bins."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)


@dataclass(frozen=True)
class BandChoice:
    band: NeutralBand
    share: float  # of validation reviews inside the band
    accuracy_inside: float  # two-class accuracy of validation reviews inside the band
    accuracy_outside: float

    def to_card(self) -> NeutralBandCard:
        low, high = self.band.probability_range()
        return NeutralBandCard(
            center=self.band.center,
            half_width=self.band.half_width,
            p_positive_range=(round(low, 4), round(high, 4)),
            validation_share=round(self.share, 4),
            validation_accuracy_inside=round(self.accuracy_inside, 4),
            validation_accuracy_outside=round(self.accuracy_outside, 4),
            rule="widest band (on temperature-scaled log-odds, centred at 0) whose "
            "validation reviews are classified correctly at most max_accuracy of the time, "
            "covering at most max_share of validation",
        )


def choose_neutral_band(
    log_odds: np.ndarray,
    positive: np.ndarray,
    *,
    max_accuracy: float = 0.75,
    max_share: float = 0.1,
    min_reviews: int = 20,
    sample_weight: np.ndarray | None = None,
) -> BandChoice:
    """Pick the neutral band on validation: reviews the model gets right no more often than
    ``max_accuracy`` are low-confidence, so they are served as neutral. With
    ``sample_weight``, accuracies and shares are weighted (the band still holds at least
    ``min_reviews`` reviews)."""
    log_odds = np.asarray(log_odds, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    weight = np.ones(len(log_odds)) if sample_weight is None else np.asarray(sample_weight, float)
    distance = np.abs(log_odds)
    order = np.argsort(distance, kind="stable")
    correct = ((log_odds > 0) == positive)[order].astype(np.float64)
    mass = np.cumsum(weight[order])
    cumulative = np.cumsum(correct * weight[order]) / mass
    share = mass / weight.sum()
    limit = int(len(order) * max_share)  # unweighted: the count the share allows
    width = 0.0
    count = 0
    for k in range(min_reviews, len(order) + 1):
        if (k > limit) if sample_weight is None else (share[k - 1] > max_share):
            break
        if cumulative[k - 1] <= max_accuracy:
            width, count = float(distance[order[k - 1]]), k
    inside = distance < width if count else np.zeros(len(log_odds), dtype=bool)
    right = (log_odds > 0) == positive

    def average(values: np.ndarray, where: np.ndarray) -> float:
        return (
            float(np.average(values[where], weights=weight[where])) if where.any() else float("nan")
        )

    return BandChoice(
        band=NeutralBand(center=0.0, half_width=width),
        share=float(np.average(inside, weights=weight)),
        accuracy_inside=average(right, inside),
        accuracy_outside=average(right, ~inside),
    )
