"""The committed default model: loads from the registry, is the pipeline's own, and beats the
seed's baseline (jieba words, TF-IDF 1-2-grams + LogisticRegression) on the pipeline's whole
test split (a fixed 10% sample of the corpus). Both sides are deterministic, so this is a
fixed comparison, not a noisy one."""

from __future__ import annotations

import numpy as np
import pytest

from model.corpus import SHIPPED_CORPUS
from model.predictor import SentimentModel
from model.registry import resolve_model_dir
from stream.config import ModelConfig
from training.baselines import fit_baseline
from training.pipeline import label_ids, prepare_data

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def config() -> ModelConfig:
    return ModelConfig(model_threads=2)


def _load(config: ModelConfig) -> SentimentModel:
    directory = resolve_model_dir(config.model_registry, config.model_name, config.model_version)
    return SentimentModel.load(
        directory,
        max_length=config.model_max_length,
        threads=config.model_threads,
        runtime=config.model_runtime,
        token_budget=config.model_token_budget,
    )


def test_shipped_model_is_small_and_loads(config: ModelConfig) -> None:
    directory = resolve_model_dir(config.model_registry, config.model_name)
    size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    assert size < 25 * 1024 * 1024
    model = _load(config)
    assert model.version == directory.name
    assert [p.label for p in model.predict_batch(["非常满意，质量很好", "太差了，退货"])] == [
        "positive",
        "negative",
    ]


def test_shipped_model_beats_the_tfidf_baseline_on_the_test_split(config: ModelConfig) -> None:
    model = _load(config)
    data = prepare_data([SHIPPED_CORPUS])
    assert model.card.data.split_sha256 == data.split.sha256, "not the pipeline's split"
    labels = data.labels
    sample = data.split.test
    y = label_ids(sample, labels)
    texts = [r.text for r in sample]
    logits = model.logits([model.text_prefix + t for t in texts])
    model_accuracy = float((logits.argmax(1) == y).mean())
    baseline = fit_baseline(
        [r.text for r in data.split.train],
        label_ids(data.split.train, labels),
        features="words",
        classifier="lr",
    )
    baseline_accuracy = float((baseline.predict_proba(texts).argmax(1) == y).mean())
    print(f"shipped {model_accuracy:.4f} vs words TF-IDF+LR {baseline_accuracy:.4f} on {len(y)}")
    assert model_accuracy > baseline_accuracy
    assert np.isfinite(logits).all()
