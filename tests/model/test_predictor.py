from pathlib import Path

import numpy as np
import pytest

from model.predictor import SentimentModel, token_budget_batches
from model.registry import load_model, resolve_model_dir
from stream.settings import Settings

TEXTS = [
    "质量很好，物流也快，非常满意",
    "太差了，再也不买了",
    "一般般吧",
    "房间干净，服务热情，下次还住这家酒店",
    "",
    "iPhone 充电器 2000mAh, 用了三天就坏了!!!",
]


@pytest.fixture(scope="module")
def model(tiny_registry: Path) -> SentimentModel:
    return SentimentModel.load(resolve_model_dir(tiny_registry, "sentiment"), threads=1)


def test_one_prediction_per_input_with_valid_probabilities(model: SentimentModel) -> None:
    predictions = model.predict_batch(TEXTS)
    assert len(predictions) == len(TEXTS)
    for prediction in predictions:
        assert prediction.label in ("negative", "neutral", "positive")
        assert set(prediction.probabilities) == {"negative", "neutral", "positive"}
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
        assert prediction.confidence == max(prediction.probabilities.values())
        assert prediction.confidence == prediction.probabilities[prediction.label]


def test_empty_batch(model: SentimentModel) -> None:
    assert model.predict_batch([]) == []


@pytest.mark.parametrize(
    ("runtime", "tolerance"),
    # int8 activations are quantised per call, so batch-mates move a score a little.
    [("torch", 1e-5), ("onnx", 2e-2)],
)
def test_a_text_scores_the_same_alone_and_in_a_padded_batch(
    tiny_registry: Path, runtime: str, tolerance: float
) -> None:
    model = SentimentModel.load(
        resolve_model_dir(tiny_registry, "sentiment"), threads=1, runtime=runtime
    )
    batch = model.probabilities(TEXTS * 20)
    for index, text in enumerate(TEXTS):
        alone = model.probabilities([text])[0]
        assert np.allclose(alone, batch[index], atol=tolerance)


def test_version_and_labels_come_from_the_directory(model: SentimentModel) -> None:
    assert model.version == model.card["version"]
    assert model.labels == ("negative", "neutral", "positive")
    assert model.model_labels == ("negative", "positive")


def test_serving_tokenizer_matches_training_tokenizer(model: SentimentModel, tiny_registry: Path):
    from tokenizers import Tokenizer

    from model.text import clean_text

    directory = resolve_model_dir(tiny_registry, "sentiment")
    training = Tokenizer.from_file(str(directory / "tokenizer.json"))
    for text in TEXTS:
        text = clean_text(text)
        served = model.encoded([text])[0]
        training.enable_truncation(model.max_length)
        assert served == training.encode(text).ids


def test_load_model_follows_settings(tiny_registry: Path) -> None:
    settings = Settings(model_registry=tiny_registry, model_threads=1, model_max_length=32)
    model = load_model(settings)
    assert model.max_length == 32
    assert len(model.predict_batch(["不错"])) == 1


def test_token_budget_batches_cover_every_index_within_budget() -> None:
    lengths = [5, 120, 7, 64, 3, 128, 40, 9] * 10
    batches = token_budget_batches(lengths, max_batch=16, token_budget=512)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 16
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 512
