"""Gated promotion: the pure rules (``train --gate`` and ``retrain``), and
``reviewpulse train --gate`` against a real registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.registry import current_version, list_versions
from stream.cli import main
from training.gate import EXIT_NOT_PROMOTED, GateRules, RetrainRules, decide, decide_retrain

SERVED = {"accuracy": 0.93, "macro_f1": 0.93, "ece": 0.01}


def test_a_better_candidate_is_promoted() -> None:
    decision = decide({"accuracy": 0.94, "macro_f1": 0.94, "ece": 0.02}, SERVED, GateRules())
    assert decision.promote and decision.reasons == []


def test_the_first_model_needs_only_calibration() -> None:
    assert decide({"accuracy": 0.6, "macro_f1": 0.6, "ece": 0.01}, None, GateRules()).promote
    rejected = decide({"accuracy": 0.9, "macro_f1": 0.9, "ece": 0.2}, None, GateRules())
    assert not rejected.promote and "ECE" in rejected.reasons[0]


def test_every_failed_rule_is_reported() -> None:
    decision = decide(
        {"accuracy": 0.925, "macro_f1": 0.90, "ece": 0.06},
        SERVED,
        GateRules(min_accuracy_gain=0.0, max_macro_f1_drop=0.002, max_ece=0.05),
    )
    assert not decision.promote
    assert len(decision.reasons) == 3
    assert any("gain -0.0050" in r for r in decision.reasons)
    assert decision.to_dict()["rules"]["max_ece"] == 0.05


def test_a_required_gain_holds_back_an_equal_candidate() -> None:
    same = dict(SERVED)
    assert decide(same, SERVED, GateRules()).promote
    assert not decide(same, SERVED, GateRules(min_accuracy_gain=0.005)).promote


SERVED_SLICES = {"corpus_test_accuracy": 0.930, "traffic_accuracy": 0.850, "holdback_reviews": 900}


def _candidate(**changes: float) -> dict[str, float]:
    return {**SERVED_SLICES, "traffic_accuracy": 0.90, "ece": 0.01, **changes}


def test_retrain_gate_accepts_a_traffic_gain_within_the_corpus_allowance() -> None:
    decision = decide_retrain(
        _candidate(corpus_test_accuracy=0.9255), SERVED_SLICES, RetrainRules()
    )
    assert decision.promote and decision.reasons == []
    assert decision.to_dict()["rules"]["max_corpus_drop"] == 0.005


def test_retrain_gate_refuses_a_corpus_loss_beyond_half_a_point() -> None:
    decision = decide_retrain(_candidate(corpus_test_accuracy=0.924), SERVED_SLICES, RetrainRules())
    assert not decision.promote
    assert decision.reasons == [
        "corpus test accuracy 0.9240 vs served 0.9300 (drop 0.0060 > 0.005)"
    ]


def test_retrain_gate_refuses_no_gain_on_the_held_back_traffic() -> None:
    same = decide_retrain(_candidate(traffic_accuracy=0.85), SERVED_SLICES, RetrainRules())
    assert not same.promote and "gain +0.0000 not > +0.0" in same.reasons[0]
    small = _candidate(traffic_accuracy=0.86)
    assert decide_retrain(small, SERVED_SLICES, RetrainRules()).promote
    assert not decide_retrain(small, SERVED_SLICES, RetrainRules(min_traffic_gain=0.02)).promote


def test_retrain_gate_refuses_a_slice_too_small_and_a_miscalibrated_candidate() -> None:
    decision = decide_retrain(
        _candidate(holdback_reviews=12, ece=0.08), SERVED_SLICES, RetrainRules()
    )
    assert not decision.promote and len(decision.reasons) == 2
    assert "12 rated reviews" in decision.reasons[0] and "ECE" in decision.reasons[1]


@pytest.mark.slow
def test_train_gate_promotes_then_holds_back_a_weaker_model(tmp_path: Path, capsys) -> None:
    registry = tmp_path / "registry"
    common = [
        "--sample", "1200", "--hidden-size", "32", "--layers", "1", "--heads", "2",
        "--intermediate-size", "64", "--max-length", "64", "--vocab-size", "2000",
        "--model-registry", str(registry), "--model-threads", "1", "--no-progress", "--gate",
        "--gate-max-ece", "0.2",  # ECE of a 124-review test split is mostly noise
        "--no-lexical",  # networks alone: a TF-IDF half would rescue the barely trained one
    ]  # fmt: skip
    assert main(["train", *common, "--epochs", "3", "--learning-rate", "3e-3", "--tag", "a"]) == 0
    first = current_version(registry, "sentiment")
    assert "as CURRENT" in capsys.readouterr().out
    # A barely trained model: published for inspection, but not served.
    code = main(["train", *common, "--epochs", "0.02", "--learning-rate", "1e-5", "--tag", "b"])
    out = capsys.readouterr().out
    assert code == EXIT_NOT_PROMOTED
    assert "CURRENT unchanged" in out and '"promote": false' in out
    assert current_version(registry, "sentiment") == first
    assert len(list_versions(registry, "sentiment")) == 2
