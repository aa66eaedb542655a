from pathlib import Path

import numpy as np
import pytest

from model.predictor import (
    SentimentModel,
    ServedTokenizer,
    model_labels_of,
    token_budget_batches,
)
from model.registry import resolve_model_dir
from model.text import clean_text

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
    assert model.predict_cleaned([]) == []


def test_cleaned_texts_are_not_cleaned_again(model: SentimentModel) -> None:
    cleaned = [clean_text(text) for text in TEXTS]
    assert model.predict_cleaned(cleaned) == model.predict_batch(TEXTS)


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
    assert model.version == model.card.version
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


def test_served_tokenizer_is_the_one_transformers_loads(tiny_registry: Path) -> None:
    """``ServedTokenizer`` reads the directory without ``transformers``: same ids, same pad
    and unknown ids, same labels as ``AutoTokenizer`` and ``AutoConfig`` give."""
    from transformers import AutoConfig, AutoTokenizer

    directory = resolve_model_dir(tiny_registry, "sentiment")
    served = ServedTokenizer.load(directory)
    reference = AutoTokenizer.from_pretrained(str(directory))
    config = AutoConfig.from_pretrained(str(directory))
    assert served.pad_token_id == reference.pad_token_id
    assert served.unk_token_id == reference.unk_token_id
    assert model_labels_of(directory) == [config.id2label[i] for i in range(config.num_labels)]
    texts = [clean_text(t) for t in [*TEXTS, "𠀀𠀁好", "ＵＳＢ接口 OK!!", "质量很好。" * 40]]
    expected = reference(texts, truncation=True, max_length=32)["input_ids"]
    served.encoder.enable_truncation(32)
    assert [e.ids for e in served.encoder.encode_batch(texts)] == expected


def test_load_takes_the_serving_options_and_keeps_its_directory(tiny_registry: Path) -> None:
    directory = resolve_model_dir(tiny_registry, "sentiment")
    model = SentimentModel.load(directory, threads=1, max_length=32, token_budget=64)
    assert model.directory == directory
    assert (model.max_length, model.token_budget) == (32, 64)
    assert len(model.predict_batch(["不错"])) == 1


def test_token_budget_batches_cover_every_index_within_budget() -> None:
    lengths = [5, 120, 7, 64, 3, 128, 40, 9] * 10
    batches = token_budget_batches(lengths, token_budget=512)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 512


def test_the_token_budget_alone_sizes_a_group() -> None:
    assert [len(b) for b in token_budget_batches([2] * 200, token_budget=256)] == [128, 72]
    assert [len(b) for b in token_budget_batches([300, 4], token_budget=256)] == [1, 1]
