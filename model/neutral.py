"""Serving three labels from a model trained on two, through a calibrated neutral band.

The model card holds a temperature ``T`` and a band on the temperature-scaled log-odds
``x = (logit_pos - logit_neg) / T``: reviews with ``|x - center| < half_width`` are neutral.
Probabilities come from a softmax over three logits ``(-m, s, m)`` with
``m = (x - center) / 2`` and ``s = half_width / 2``: the negative/positive odds stay exactly the
calibrated two-class odds, and neutral wins precisely inside the band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.labels import NEGATIVE, POSITIVE, SENTIMENTS


@dataclass(frozen=True)
class NeutralBand:
    center: float = 0.0  # on the temperature-scaled log-odds
    half_width: float = 0.0

    def probability_range(self) -> tuple[float, float]:
        """The band as P(positive) bounds, for people reading the model card."""
        low, high = self.center - self.half_width, self.center + self.half_width
        return float(1 / (1 + np.exp(-low))), float(1 / (1 + np.exp(-high)))


def three_way_from_binary(log_odds: np.ndarray, band: NeutralBand) -> np.ndarray:
    """Rows of (negative, neutral, positive) probabilities from scaled two-class log-odds."""
    m = (np.asarray(log_odds, dtype=np.float64) - band.center) / 2
    s = np.full_like(m, band.half_width / 2)
    scores = np.stack([-m, s, m], axis=1)
    scores -= scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(axis=1, keepdims=True)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    weights = np.exp(scaled)
    return weights / weights.sum(axis=1, keepdims=True)


def served_probabilities(
    logits: np.ndarray, labels: tuple[str, ...], temperature: float, band: NeutralBand
) -> np.ndarray:
    """(negative, neutral, positive) probabilities for a batch of model logits.

    A two-label (negative, positive) model goes through the neutral band; a model that has
    a neutral class is served by its own (temperature-scaled) softmax."""
    logits = np.asarray(logits, dtype=np.float64)
    if set(labels) == {NEGATIVE, POSITIVE}:
        neg, pos = labels.index(NEGATIVE), labels.index(POSITIVE)
        return three_way_from_binary((logits[:, pos] - logits[:, neg]) / temperature, band)
    if set(labels) != set(SENTIMENTS):
        raise ValueError(f"model labels {labels} are not negative/positive[/neutral]")
    probs = softmax(logits, temperature)
    return probs[:, [labels.index(name) for name in SENTIMENTS]]
