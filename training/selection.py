"""Choosing on a validation set made of two sources: corpus reviews and rated traffic.

Retraining calibrates and chooses on corpus validation plus the traffic validation slice.
Pooled, the corpus outnumbers the new domain about ten to one, so every choice would be made
for the corpus. Here each source carries a fixed share of the weight instead
(:class:`WeightedValidation`, default half each), and the corpus reviews set a floor: a choice
that loses more than the retrain gate's ``max_corpus_drop`` on corpus validation, against
the served model, is taken only if no choice keeps it (:func:`choose`).

The same rule picks the TF-IDF half's C, the fusion weight and which fine-tuning run (and
epoch) becomes the candidate (:class:`FineTuneRun`). Pure functions over arrays.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)

SELECTION_RULE = (
    "corpus and traffic validation reviews each carry a fixed share of the weight; among the "
    "choices whose corpus validation accuracy stays at or above the floor (the served model's "
    "minus the gate's max_corpus_drop), the best weighted accuracy wins (ties: the lower "
    "weighted log-loss, then the earlier choice); none above the floor: the best corpus "
    "validation accuracy"
)


@dataclass(frozen=True)
class WeightedValidation:
    """Which validation reviews came from the rated traffic, the share of the total weight
    they carry, and the corpus floor (None: no floor)."""

    traffic: np.ndarray = field(compare=False)  # bool, one per validation review
    traffic_weight: float = 0.5
    min_corpus_accuracy: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.traffic_weight <= 1:
            raise ValueError("traffic_weight must be in [0, 1]")

    def sample_weights(self) -> np.ndarray:
        """One weight per review, mean 1: the traffic reviews sum to ``traffic_weight`` of
        the total, the corpus reviews to the rest (all alike when either source is empty)."""
        traffic = np.asarray(self.traffic, dtype=bool)
        n, n_traffic = len(traffic), int(traffic.sum())
        if n_traffic in (0, n):
            return np.ones(n)
        return np.where(
            traffic,
            self.traffic_weight * n / n_traffic,
            (1 - self.traffic_weight) * n / (n - n_traffic),
        )

    def figures(self, correct: np.ndarray, loss: np.ndarray | None = None) -> dict[str, float]:
        """Accuracy per source and weighted (and the weighted mean of a per-review loss)."""
        correct = np.asarray(correct, dtype=np.float64)
        traffic = np.asarray(self.traffic, dtype=bool)
        out = {
            "corpus_accuracy": _mean(correct[~traffic]),
            "traffic_accuracy": _mean(correct[traffic]),
            "weighted_accuracy": float(np.average(correct, weights=self.sample_weights())),
        }
        if loss is not None:
            out["weighted_log_loss"] = float(np.average(loss, weights=self.sample_weights()))
        return out


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


def choose(figures: Mapping[K, Mapping[str, float]], min_corpus_accuracy: float | None) -> K:
    """The choice by :data:`SELECTION_RULE`; ``figures`` (in preference order for ties) hold
    ``corpus_accuracy``, ``weighted_accuracy`` and optionally ``weighted_log_loss``."""
    if not figures:
        raise ValueError("nothing to choose from")
    keys = list(figures)

    def corpus(key: K) -> float:
        value = figures[key]["corpus_accuracy"]
        return -np.inf if np.isnan(value) else value

    above = [k for k in keys if min_corpus_accuracy is None or corpus(k) >= min_corpus_accuracy]
    if not above:
        return max(keys, key=lambda k: (corpus(k), -keys.index(k)))
    return max(
        above,
        key=lambda k: (
            figures[k]["weighted_accuracy"],
            -figures[k].get("weighted_log_loss", 0.0),
            -keys.index(k),
        ),
    )


@dataclass(frozen=True)
class FineTuneRun:
    """One fine-tuning run: the traffic's share of its mix (None: the mix rule's share) and
    its epochs. Every epoch's end is a candidate."""

    share: float | None
    epochs: float

    def __post_init__(self) -> None:
        if self.share is not None and not 0 < self.share < 1:
            raise ValueError("a run's traffic share must be in (0, 1)")
        if self.epochs <= 0:
            raise ValueError("a run needs epochs > 0")

    @property
    def name(self) -> str:
        share = "rule" if self.share is None else f"{self.share:g}"
        return f"{share}:{self.epochs:g}"


DEFAULT_RUNS: tuple[FineTuneRun, ...] = (FineTuneRun(None, 1.0), FineTuneRun(0.5, 2.0))


def parse_runs(spec: str) -> tuple[FineTuneRun, ...]:
    """``"rule:1,0.5:2"`` -> the runs it names (``SHARE:EPOCHS``, SHARE ``rule`` or a number)."""
    runs = []
    for part in (p.strip() for p in spec.split(",")):
        share, sep, epochs = part.partition(":")
        if not sep:
            raise ValueError(f"{part!r} is not SHARE:EPOCHS")
        try:
            runs.append(FineTuneRun(None if share == "rule" else float(share), float(epochs)))
        except ValueError as error:
            raise ValueError(f"{part!r}: {error}") from None
    if len({r.name for r in runs}) != len(runs):
        raise ValueError(f"{spec!r} names a run twice")
    return tuple(runs)


def describe_runs(runs: Sequence[FineTuneRun]) -> str:
    return ",".join(r.name for r in runs)


def candidate_name(run: FineTuneRun, epoch: int) -> str:
    """A candidate: run ``run`` at the end of its ``epoch``-th (1-based) epoch."""
    return f"{run.name}@{epoch}"


def rounded(figures: Mapping[str, Any], digits: int = 4) -> dict[str, Any]:
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in figures.items()}
