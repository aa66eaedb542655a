"""Traffic profiles: the drift maths on fixed inputs, the card's reference round trip, and the
reference profile and token counts of a really trained (tiny) model."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from model.card import CARD_FILE, DataCard, ModelCard
from model.labels import BINARY_SENTIMENTS
from model.predictor import Prediction, SentimentModel
from model.profile import (
    CONFIDENCE_EDGES,
    TEXT_LENGTH_EDGES,
    Histogram,
    TrafficProfile,
    bin_counts,
    histogram_psi,
    label_psi,
    label_shares,
    profile_of,
    psi,
    reference_profile,
)
from model.registry import resolve_model_dir
from model.text import clean_text

# --- PSI --------------------------------------------------------------------------------------


def test_psi_of_equal_distributions_is_zero() -> None:
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_psi_on_fixed_shares() -> None:
    # (0.9 - 0.5) ln(0.9 / 0.5) + (0.1 - 0.5) ln(0.1 / 0.5) = 0.4 ln 1.8 + 0.4 ln 5
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.878890, abs=1e-6)
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(psi([0.9, 0.1], [0.5, 0.5]))
    # A 10-point move between two of four bins: the "stable" side of the 0.1 convention.
    assert psi([0.25] * 4, [0.35, 0.15, 0.25, 0.25]) == pytest.approx(0.0848, abs=1e-4)


def test_an_empty_bin_counts_as_epsilon() -> None:
    value = psi([1.0, 0.0], [0.5, 0.5], epsilon=1e-4)
    assert value == pytest.approx(0.5 * math.log(2) + 0.4999 * math.log(0.5 / 1e-4))
    assert math.isfinite(value)
    assert psi([1.0, 0.0], [1.0, 0.0]) == 0.0


def test_psi_refuses_different_bins() -> None:
    with pytest.raises(ValueError, match="2 expected shares but 3 actual"):
        psi([0.5, 0.5], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="different bins"):
        histogram_psi(Histogram((0, 1), (0.5, 0.5)), Histogram((0, 2), (0.5, 0.5)))


def test_label_psi_reads_labels_by_name() -> None:
    reference = {"negative": 0.45, "neutral": 0.1, "positive": 0.45}
    live = {"positive": 0.3, "neutral": 0.4, "negative": 0.3}
    assert label_psi(reference, live) == pytest.approx(psi([0.45, 0.1, 0.45], [0.3, 0.4, 0.3]))
    assert label_psi(reference, {"negative": 0.45, "positive": 0.55}) > 0


# --- histograms -------------------------------------------------------------------------------


def test_bins_are_lower_bounds_and_the_ends_are_open() -> None:
    edges = (0, 10, 20)
    # below the first edge -> first bin; an edge belongs to the bin it starts; the last is open
    assert bin_counts(edges, [-1, 0, 9.99, 10, 19.99, 20, 1000]) == [3, 2, 2]
    histogram = Histogram.of_values(edges, [-1, 0, 9.99, 10, 19.99, 20, 1000])
    assert histogram.shares == pytest.approx((3 / 7, 2 / 7, 2 / 7))
    assert histogram.edges == (0.0, 10.0, 20.0)


def test_an_empty_histogram_has_zero_shares() -> None:
    assert Histogram.of_values(TEXT_LENGTH_EDGES, []).shares == (0.0,) * len(TEXT_LENGTH_EDGES)


def test_histograms_check_their_shape() -> None:
    with pytest.raises(ValueError, match="2 edges for 3 shares"):
        Histogram((0, 1), (0.2, 0.3, 0.5))
    with pytest.raises(ValueError, match="rise strictly"):
        Histogram((0, 1, 1), (0.2, 0.3, 0.5))


def test_the_fixed_edges_rise() -> None:
    assert CONFIDENCE_EDGES[0] == 0.0 and CONFIDENCE_EDGES[-1] == 0.95
    assert len(CONFIDENCE_EDGES) == 13
    Histogram(CONFIDENCE_EDGES, (0.0,) * len(CONFIDENCE_EDGES))
    Histogram(TEXT_LENGTH_EDGES, (0.0,) * len(TEXT_LENGTH_EDGES))


# --- profiles ---------------------------------------------------------------------------------


def _prediction(label: str, confidence: float, tokens: int, unknown: int) -> Prediction:
    rest = (1 - confidence) / 2
    probabilities = {"negative": rest, "neutral": rest, "positive": rest, label: confidence}
    return Prediction(label, confidence, probabilities, tokens=tokens, unknown_tokens=unknown)  # type: ignore[arg-type]


def test_profile_of_fixed_predictions() -> None:
    predictions = [
        _prediction("positive", 0.97, tokens=10, unknown=0),
        _prediction("positive", 0.62, tokens=20, unknown=1),
        _prediction("neutral", 0.41, tokens=5, unknown=0),
        _prediction("negative", 0.88, tokens=5, unknown=3),
    ]
    profile = profile_of(predictions, [5, 12, 12, 400])
    assert profile.reviews == 4
    assert profile.label_shares == {"negative": 0.25, "neutral": 0.25, "positive": 0.5}
    assert profile.neutral_share == 0.25
    assert profile.unknown_token_share == pytest.approx(4 / 40)
    confidence = dict(zip(profile.confidence.edges, profile.confidence.shares, strict=True))
    assert confidence[0.95] == confidence[0.6] == confidence[0.4] == confidence[0.85] == 0.25
    assert sum(profile.confidence.shares) == pytest.approx(1.0)
    assert profile.text_length.shares == pytest.approx((0.25, 0.5, 0, 0, 0, 0, 0.25))


def test_agreement_with_true_labels() -> None:
    predictions = [
        _prediction("positive", 0.9, 5, 0),
        _prediction("neutral", 0.45, 5, 0),  # a two-class review served neutral: a miss
        _prediction("negative", 0.8, 5, 0),
        _prediction("negative", 0.7, 5, 0),
    ]
    labels = ["positive", "positive", "negative", "positive"]
    assert profile_of(predictions, [10] * 4, labels).agreement == 0.5
    assert profile_of(predictions, [10] * 4).agreement is None
    with pytest.raises(ValueError, match="4 predictions but 3 labels"):
        profile_of(predictions, [10] * 4, labels[:3])


def test_categories_get_their_own_profile_when_they_have_enough_reviews() -> None:
    predictions = [_prediction("positive", 0.9, 4, 0)] * 3 + [_prediction("negative", 0.6, 4, 2)]
    categories = ["手机", "手机", "书籍", "手机"]
    profile = profile_of(predictions, [10, 10, 50, 30], None, categories, min_category_reviews=2)
    assert profile.categories is not None and set(profile.categories) == {"手机"}
    phones = profile.for_category("手机")
    assert phones.reviews == 3 and phones.categories is None
    assert phones.label_shares == {"negative": 1 / 3, "neutral": 0.0, "positive": 2 / 3}
    assert phones.unknown_token_share == 2 / 12
    assert profile.for_category("书籍") is profile  # too few: the whole is its reference
    assert profile.for_category("外卖") is profile
    assert TrafficProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    assert profile_of(predictions, [1] * 4).for_category("手机").reviews == 4


def test_profile_of_refuses_mismatched_inputs_and_unknown_labels() -> None:
    with pytest.raises(ValueError, match="1 predictions but 2 lengths"):
        profile_of([_prediction("positive", 0.9, 1, 0)], [1, 2])
    with pytest.raises(ValueError, match="not one of"):
        label_shares(["positive", "great"])


def test_a_profile_round_trips_through_json() -> None:
    profile = profile_of([_prediction("negative", 0.7, 8, 1)], [30])
    assert TrafficProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    assert "agreement" not in profile.to_dict()
    labelled = profile_of([_prediction("negative", 0.7, 8, 1)], [30], ["negative"])
    assert TrafficProfile.from_dict(json.loads(json.dumps(labelled.to_dict()))) == labelled


def _card(**changes: object) -> ModelCard:
    values: dict[str, object] = {
        "name": "sentiment",
        "version": "v1",
        "model_labels": BINARY_SENTIMENTS,
        "temperature": 1.0,
        "neutral_band": None,
        "max_length": 64,
        "text_prefix": "",
        "start": {"kind": "scratch"},
        "training": {},
        "data": DataCard(),
        "onnx": None,
        "metrics": {},
        "learning_curves": {},
    }
    return ModelCard(**{**values, **changes})  # type: ignore[arg-type]


def test_a_card_carries_its_reference_profile(tmp_path: Path) -> None:
    reference = profile_of(
        [_prediction("negative", 0.7, 8, 1), _prediction("neutral", 0.45, 4, 0)], [30, 9]
    )
    by_category = {"手机": replace(reference, reviews=1)}
    card = _card(reference=replace(reference, agreement=0.9, categories=by_category))
    card.write(tmp_path)
    assert ModelCard.read(tmp_path) == card
    written = json.loads((tmp_path / CARD_FILE).read_text(encoding="utf-8"))
    assert written["reference"]["label_shares"] == {
        "negative": 0.5,
        "neutral": 0.5,
        "positive": 0.0,
    }
    assert written["reference"]["text_length"]["edges"] == list(TEXT_LENGTH_EDGES)
    assert written["reference"]["categories"]["手机"]["reviews"] == 1
    assert written["reference"] == card.reference.to_dict()  # type: ignore[union-attr]


def test_a_card_without_a_reference_still_reads(tmp_path: Path) -> None:
    _card().write(tmp_path)
    written = json.loads((tmp_path / CARD_FILE).read_text(encoding="utf-8"))
    assert "reference" not in written
    assert ModelCard.read(tmp_path).reference is None


# --- a real model -----------------------------------------------------------------------------

TEXTS = ["质量很好，物流也快，非常满意", "太差了，再也不买了", "一般般吧", "", "用了三天就坏了!!!"]


@pytest.fixture(scope="module")
def model(tiny_registry: Path) -> SentimentModel:
    return SentimentModel.load(resolve_model_dir(tiny_registry, "sentiment"), threads=1)


def test_predictions_count_the_tokens_the_model_saw(model: SentimentModel) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model.directory))
    rare = "𠀀𠀁𠀂好"  # CJK extension B: not in a vocabulary built from the corpus
    cleaned = [clean_text(t) for t in [*TEXTS, rare, "质量很好，物流也快。" * 30]]
    predictions = model.predict_cleaned(cleaned)
    for text, prediction in zip(cleaned[:-1], predictions, strict=False):
        pieces = tokenizer.tokenize(text)
        assert prediction.tokens == len(pieces), text
        assert prediction.unknown_tokens == pieces.count(tokenizer.unk_token), text
    assert predictions[3].tokens == 0  # the empty text
    assert predictions[5].unknown_tokens >= 1
    # truncated to max_length, less [CLS] and [SEP]
    assert predictions[-1].tokens == model.max_length - 2
    assert model.predict_batch(TEXTS) == model.predict_cleaned(cleaned[: len(TEXTS)])


def test_reference_profile_of_the_tiny_model(model: SentimentModel) -> None:
    cleaned = [clean_text(t) for t in TEXTS * 3]
    profile = reference_profile(model, cleaned)
    predictions = model.predict_cleaned(cleaned)
    assert profile == profile_of(predictions, [len(t) for t in cleaned])
    assert profile.reviews == 15
    assert sum(profile.label_shares.values()) == pytest.approx(1.0)
    assert sum(profile.confidence.shares) == pytest.approx(1.0)
    # under 10 characters: "太差了,再也不买了" (9), "一般般吧" and ""; 10-19: the other two
    assert profile.text_length.shares[:2] == pytest.approx((9 / 15, 6 / 15))
    tokens = sum(p.tokens for p in predictions)
    assert profile.unknown_token_share == sum(p.unknown_tokens for p in predictions) / tokens
    labels = ["positive", "negative", "negative", "negative", "negative"] * 3
    labelled = reference_profile(model, cleaned, labels, ["手机"] * 5 + ["书籍"] * 10)
    hits = sum(p.label == label for p, label in zip(predictions, labels, strict=True))
    assert labelled.agreement == hits / 15
    assert labelled.categories == {}  # fewer than MIN_CATEGORY_REVIEWS each
