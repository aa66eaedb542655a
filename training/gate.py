"""Gated promotion: a retrained model becomes CURRENT only if it beats the served one.

Two gates, both pure rules over figures (:func:`decide`, :func:`decide_retrain`) that
always publish the candidate as a new version but move ``CURRENT`` only when they pass:

* ``reviewpulse train --gate`` / ``import-student --gate``: both models judged on the
  candidate's test split, through their serving runtimes. If the served model was trained on
  some of those reviews (the split moves when new rated data joins), it is flattered, so the
  gate errs towards keeping it.
* ``reviewpulse retrain``: the corpus test split of the served model (which it never trained
  on) may lose at most ``max_corpus_drop``, and the held-back newest slice of rated traffic
  (which neither model trained on) must gain more than ``min_traffic_gain``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model.card import ModelCard

EXIT_NOT_PROMOTED = 3  # the candidate is published, CURRENT stays


@dataclass(frozen=True)
class GateRules:
    min_accuracy_gain: float = 0.0  # candidate minus served, test accuracy
    max_macro_f1_drop: float = 0.002
    max_ece: float = 0.05


@dataclass(frozen=True)
class RetrainRules:
    max_corpus_drop: float = 0.005  # served minus candidate, corpus test accuracy
    min_traffic_gain: float = 0.0  # candidate minus served on the held-back slice must exceed it
    min_holdback_reviews: int = 50  # fewer: the slice is too small to show a gain
    max_ece: float = 0.05  # the candidate's, on the corpus test split


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reasons: list[str]  # every failed rule; empty when promoted
    candidate: dict[str, float]
    served: dict[str, float] | None
    rules: GateRules | RetrainRules = field(default_factory=GateRules)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rules": asdict(self.rules)}


def decide(
    candidate: dict[str, float], served: dict[str, float] | None, rules: GateRules
) -> GateDecision:
    """Pure: ``candidate``/``served`` hold test ``accuracy``, ``macro_f1`` and ``ece``;
    ``served`` is None when nothing is served yet."""
    reasons = []
    if candidate["ece"] > rules.max_ece:
        reasons.append(f"candidate ECE {candidate['ece']:.4f} > {rules.max_ece}")
    if served is not None:
        gain = candidate["accuracy"] - served["accuracy"]
        if gain < rules.min_accuracy_gain:
            reasons.append(
                f"accuracy {candidate['accuracy']:.4f} vs served {served['accuracy']:.4f} "
                f"(gain {gain:+.4f} < {rules.min_accuracy_gain:+.4f})"
            )
        drop = served["macro_f1"] - candidate["macro_f1"]
        if drop > rules.max_macro_f1_drop:
            reasons.append(
                f"macro-F1 {candidate['macro_f1']:.4f} vs served {served['macro_f1']:.4f} "
                f"(drop {drop:.4f} > {rules.max_macro_f1_drop})"
            )
    return GateDecision(not reasons, reasons, candidate, served, rules)


def decide_retrain(
    candidate: Mapping[str, float], served: Mapping[str, float], rules: RetrainRules
) -> GateDecision:
    """Pure: both hold ``corpus_test_accuracy``, ``traffic_accuracy`` and
    ``holdback_reviews`` (the two-class reviews of the held-back slice); the candidate also
    its ``ece``."""
    reasons = []
    drop = served["corpus_test_accuracy"] - candidate["corpus_test_accuracy"]
    if drop > rules.max_corpus_drop:
        reasons.append(
            f"corpus test accuracy {candidate['corpus_test_accuracy']:.4f} vs served "
            f"{served['corpus_test_accuracy']:.4f} (drop {drop:.4f} > {rules.max_corpus_drop})"
        )
    gain = candidate["traffic_accuracy"] - served["traffic_accuracy"]
    if not gain > rules.min_traffic_gain:
        reasons.append(
            f"held-back traffic accuracy {candidate['traffic_accuracy']:.4f} vs served "
            f"{served['traffic_accuracy']:.4f} (gain {gain:+.4f} not > {rules.min_traffic_gain:+})"
        )
    if candidate["holdback_reviews"] < rules.min_holdback_reviews:
        reasons.append(
            f"held-back slice has {int(candidate['holdback_reviews'])} rated reviews "
            f"(< {rules.min_holdback_reviews}): too few to show a gain"
        )
    if candidate["ece"] > rules.max_ece:
        reasons.append(f"candidate ECE {candidate['ece']:.4f} > {rules.max_ece}")
    return GateDecision(not reasons, reasons, dict(candidate), dict(served), rules)


def _test_figures(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(metrics[k]) for k in ("accuracy", "macro_f1", "ece")}


def served_test_figures(
    model_dir: Path, data: Any, *, threads: int, runtime: str = "auto"
) -> dict[str, float]:
    """The served model's figures on ``data``'s test split, as serving computes them."""
    from model.predictor import SentimentModel
    from training.report import evaluate_served_model

    model = SentimentModel.load(model_dir, threads=threads, runtime=runtime)
    return _test_figures(evaluate_served_model(model, data)["test"])


def gate_candidate(
    candidate_card: ModelCard,
    data: Any,
    registry: Path,
    name: str,
    *,
    rules: GateRules,
    threads: int,
    runtime: str = "auto",
) -> GateDecision:
    """Judge a packaged candidate against the registry's CURRENT model (if any)."""
    from model.registry import resolve_model_dir

    try:
        served_dir = resolve_model_dir(registry, name)
    except FileNotFoundError:
        served = None
    else:
        served = served_test_figures(served_dir, data, threads=threads, runtime=runtime)
    return decide(_test_figures(candidate_card.metrics["test"]), served, rules)
