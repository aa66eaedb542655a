"""The load-time canary: well-formed predictions, and agreement with the card's figures."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from model.predictor import SentimentModel
from stream.serving.canary import (
    CANARY_NEGATIVE,
    CANARY_POSITIVE,
    CanaryFailed,
    check_predictions,
    run_canary,
)
from tests.stream.serving.registry import SHIPPED

CANARY_SIZE = len(CANARY_POSITIVE) + len(CANARY_NEGATIVE)


@dataclass(frozen=True)
class P:
    label: str = "positive"
    confidence: float = 0.8
    probabilities: dict = field(
        default_factory=lambda: {"negative": 0.1, "neutral": 0.1, "positive": 0.8}
    )


class ConstantModel:
    """Says the same thing about every text; its card claims ``accuracy``."""

    runtime = "fake"

    def __init__(self, prediction: P, *, version: str = "v1", accuracy: float | None = None):
        self.version = version
        self.prediction = prediction
        metrics = {} if accuracy is None else {"validation": {"accuracy": accuracy}}
        self.card = SimpleNamespace(metrics=metrics)

    def predict_cleaned(self, texts):
        return [self.prediction for _ in texts]


@pytest.fixture(scope="module")
def shipped() -> SentimentModel:
    return SentimentModel.load(SHIPPED)


def test_the_shipped_model_passes_near_its_card_accuracy(shipped: SentimentModel) -> None:
    result = run_canary(shipped, version=shipped.version, tolerance=0.25)
    assert result.texts == CANARY_SIZE
    assert result.reference == pytest.approx(shipped.card.metrics["validation"]["accuracy"])
    assert result.accuracy >= 0.9


def test_a_model_whose_card_names_another_version_is_refused(shipped: SentimentModel) -> None:
    with pytest.raises(CanaryFailed, match="card says version"):
        run_canary(shipped, version="v2", tolerance=0.25)


def test_a_model_far_below_its_card_is_refused() -> None:
    # Weights that do not belong to the card: everything positive, the card claims 0.93.
    model = ConstantModel(P(), accuracy=0.93)
    with pytest.raises(CanaryFailed, match=r"canary accuracy 0\.500 .* 0\.930"):
        run_canary(model, version="v1", tolerance=0.25)
    # The same model with an honest card (a weak model is not a broken one) passes.
    assert (
        run_canary(ConstantModel(P(), accuracy=0.5), version="v1", tolerance=0.25).accuracy == 0.5
    )
    assert run_canary(ConstantModel(P()), version="v1", tolerance=0.25).reference is None


@pytest.mark.parametrize(
    ("prediction", "message"),
    [
        (P(probabilities={"negative": math.nan, "neutral": 0.1, "positive": 0.9}), "not in"),
        (P(probabilities={"negative": 0.5, "neutral": 0.5, "positive": 0.5}), "sum to"),
        (P(probabilities={"negative": 0.2, "positive": 0.8}), "lack labels"),
        (P(label="meh"), "not one of"),
        (P(label="negative"), "not the most probable"),
    ],
)
def test_malformed_predictions_are_refused(prediction: P, message: str) -> None:
    with pytest.raises(CanaryFailed, match=message):
        run_canary(ConstantModel(prediction), version="v1", tolerance=0.25)


def test_a_model_that_loses_texts_or_raises_is_refused() -> None:
    with pytest.raises(CanaryFailed, match="2 predictions for 3 texts"):
        check_predictions([P(), P()], 3)
    model = ConstantModel(P())
    model.predict_cleaned = lambda texts: 1 / 0
    with pytest.raises(CanaryFailed, match="ZeroDivisionError"):
        run_canary(model, version="v1", tolerance=0.25)
