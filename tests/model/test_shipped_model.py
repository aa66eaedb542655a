"""The committed default model: loads from the registry, is the pipeline's own, is a hybrid
(network + char TF-IDF half, fused before calibration) and beats the tuned character TF-IDF +
LogisticRegression baseline (1-3-grams, sublinear tf, 300k features, C tuned on validation),
the jieba-word baseline and the version it replaced, on the pipeline's whole test split (a
fixed 10% of the corpus). Both sides are deterministic, so these are fixed comparisons, not
noisy ones."""

from __future__ import annotations

import numpy as np
import pytest

from model.corpus import SHIPPED_CORPUS
from model.predictor import SentimentModel
from model.registry import resolve_model_dir
from stream.config import ModelConfig
from training.baselines import fit_baseline, tune_lr_c
from training.pipeline import PreparedData, label_ids, prepare_data

pytestmark = pytest.mark.slow

# Test accuracy of the version this one replaced (20261129-205340-hybrid: the CPU-distilled
# student fused with its char TF-IDF half; its card is in git history), on the same split.
REPLACED_TEST_ACCURACY = 0.9370674392403026


@pytest.fixture(scope="module")
def config() -> ModelConfig:
    return ModelConfig(model_threads=2)


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return prepare_data([SHIPPED_CORPUS])


def _load(config: ModelConfig, runtime: str | None = None) -> SentimentModel:
    directory = resolve_model_dir(config.model_registry, config.model_name, config.model_version)
    return SentimentModel.load(
        directory,
        max_length=config.model_max_length,
        threads=config.model_threads,
        runtime=runtime or config.model_runtime,
        token_budget=config.model_token_budget,
    )


def _accuracy(model: SentimentModel, data: PreparedData) -> float:
    y = label_ids(data.split.test, data.labels)
    logits = model.logits([model.text_prefix + r.text for r in data.split.test])
    assert np.isfinite(logits).all()
    return float((logits.argmax(1) == y).mean())


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


def test_shipped_model_is_a_hybrid_with_a_reference_profile(
    config: ModelConfig, data: PreparedData
) -> None:
    card = _load(config).card
    assert card.lexical is not None
    # Validation chose to fuse: neither half alone (0 = TF-IDF alone, 1 = network alone).
    assert 0.0 < card.lexical.weight < 1.0
    parts = card.metrics["validation"]["accuracy_of_parts"]
    assert card.metrics["validation"]["accuracy"] > max(parts.values())
    assert card.reference is not None
    assert card.reference.reviews == len(data.split.validation)


def test_shipped_model_beats_the_tuned_tfidf_baselines_and_its_predecessor(
    config: ModelConfig, data: PreparedData
) -> None:
    model = _load(config)
    assert model.card.data.split_sha256 == data.split.sha256, "not the pipeline's split"
    split, labels = data.split, data.labels
    model_accuracy = _accuracy(model, data)
    assert model_accuracy == pytest.approx(model.card.metrics["test"]["accuracy"], abs=1e-9)
    y_train, y_val = label_ids(split.train, labels), label_ids(split.validation, labels)
    y = label_ids(split.test, labels)
    texts = [r.text for r in split.test]
    baselines = {}
    for features in ("chars", "words"):
        c, _ = tune_lr_c(
            [r.text for r in split.train],
            y_train,
            [r.text for r in split.validation],
            y_val,
            features=features,
        )
        baseline = fit_baseline(
            [r.text for r in split.train], y_train, features=features, classifier="lr", c=c
        )
        baselines[f"{features} (C={c:g})"] = float(
            (baseline.predict_proba(texts).argmax(1) == y).mean()
        )
    print(f"shipped {model_accuracy:.4f} vs TF-IDF+LR {baselines} on {len(y)} test reviews")
    assert all(model_accuracy > accuracy for accuracy in baselines.values())
    assert model_accuracy > REPLACED_TEST_ACCURACY


def test_both_runtimes_serve_the_same_figures(config: ModelConfig, data: PreparedData) -> None:
    onnx, torch = _accuracy(_load(config, "onnx"), data), _accuracy(_load(config, "torch"), data)
    assert abs(onnx - torch) < 0.002
