"""The pipeline end to end on a small sample: data -> exploration -> baselines -> tiny BERT ->
evaluation report -> registry -> served predictions; plus tuning and distillation paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.corpus import SHIPPED_CORPUS
from model.predictor import SentimentModel
from model.registry import publish, resolve_model_dir
from training.bert import BertSpec, TrainOptions
from training.pipeline import PreparedData, prepare_data
from training.train import TrainRequest, train_and_package

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return prepare_data([SHIPPED_CORPUS], sample=1500)


@pytest.fixture(scope="module")
def trained(data: PreparedData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    request = TrainRequest(
        spec=BertSpec(hidden_size=48, num_layers=1, num_heads=2, intermediate_size=96),
        options=TrainOptions(epochs=3, batch_size=32, learning_rate=3e-3, max_length=64),
        tokenizer="wordpiece",
        vocab_size=3000,
        tag="e2e",
    )
    out = tmp_path_factory.mktemp("model") / "dir"
    train_and_package(data, request, out, progress=False)
    return out


def test_sample_split_is_sane(data: PreparedData) -> None:
    sizes = data.split.summary()["sizes"]
    assert sizes["train"] > 1000 and sizes["validation"] > 100 and sizes["test"] > 100
    assert data.labels == ("negative", "positive")


def test_model_card_and_artifact(trained: Path, data: PreparedData) -> None:
    card = json.loads((trained / "reviewpulse.json").read_text())
    assert card["data"]["split"]["sha256"] == data.split.sha256
    assert card["data"]["sources"][0]["path"] == "data/reviews/online_shopping_10_cats.zip"
    assert card["model_labels"] == ["negative", "positive"]
    assert card["metrics"]["test"]["accuracy"] > 0.6  # really trained, not random
    assert card["learning_curves"]["val_accuracy"]
    assert card["temperature"] > 0
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt"} <= {
        p.name for p in trained.iterdir()
    }


def test_evaluation_and_exploration_reports(
    trained: Path, data: PreparedData, tmp_path: Path
) -> None:
    from training.explore import explore
    from training.report import write_report

    figures = write_report(
        data,
        trained,
        tmp_path / "eval",
        baselines=["chars-lr", "words-lr"],
        throughput_texts=128,
        progress=False,
    )
    for name in (
        "figures.json",
        "report.md",
        "confusion_matrix.png",
        "learning_curves.png",
        "model_comparison.png",
        "per_category.png",
        "reliability.png",
    ):
        assert (tmp_path / "eval" / name).stat().st_size > 0, name
    saved = json.loads((tmp_path / "eval" / "figures.json").read_text())
    assert [name.split(" (C=")[0] for name in saved["baselines"]] == [
        "tfidf-chars-lr",
        "tfidf-words-lr",
    ]
    assert all(figures["c"] in (1, 2, 4, 8, 16, 32) for figures in saved["baselines"].values())
    # The trained model is a hybrid: the report names it and shows each half alone.
    hybrid = next(name for name in saved["comparison"] if name.startswith("hybrid "))
    assert f"{hybrid}: its network alone" in saved["comparison"]
    assert f"{hybrid}: its TF-IDF half alone" in saved["comparison"]
    for scores in saved["comparison"].values():
        assert 0.5 < scores["accuracy"] <= 1.0
    test = figures["model"]["test"]
    assert 0 <= test["ece"] < 0.5
    assert sum(test["served_label_share"].values()) == pytest.approx(1.0)
    assert len(test["per_category"]) == 10
    assert all(rate > 0 for rate in figures["model"]["throughput_reviews_per_s"].values())
    summary = explore(data.split.train, tmp_path / "explore")
    for name in (
        "label_distribution.png",
        "length_distribution.png",
        "top_words.png",
        "exploration.md",
        "exploration.json",
    ):
        assert (tmp_path / "explore" / name).stat().st_size > 0, name
    assert summary["reviews"] == len(data.split.train)
    assert summary["top_words"]["positive"] and summary["top_words"]["negative"]


def test_registry_round_trip_serves_three_labels(trained: Path, tmp_path: Path) -> None:
    card = json.loads((trained / "reviewpulse.json").read_text())
    publish(tmp_path, "sentiment", card["version"], trained)
    model = SentimentModel.load(resolve_model_dir(tmp_path, "sentiment"), threads=1)
    predictions = model.predict_batch(["非常好，很满意", "太差了，退货", "还行"])
    assert len(predictions) == 3
    assert all(p.label in ("negative", "neutral", "positive") for p in predictions)


def test_repackaging_keeps_the_weights_and_makes_a_new_version(
    trained: Path, data: PreparedData, tmp_path: Path
) -> None:
    from training.lexical import LexicalRequest
    from training.train import repackage

    before = json.loads((trained / "reviewpulse.json").read_text())
    result = repackage(
        data, trained, tmp_path / "again", tag="again", progress=False, lexical=LexicalRequest()
    )
    card = result.card
    assert card.version != before["version"] and card.version.endswith("-again")
    assert card.start == {
        "kind": "repackaged",
        "version": before["version"],
        "start": before["start"],
    }
    # Same weights and calibration data, so the same torch figures.
    assert card.runtimes["torch"]["test_accuracy"] == pytest.approx(
        before["runtimes"]["torch"]["test_accuracy"]
    )
    assert card.learning_curves == before["learning_curves"]
    # The TF-IDF half is refitted on the same split: the same C, weight and files.
    assert card.lexical is not None
    assert (card.lexical.c, card.lexical.weight) == (
        before["lexical"]["c"],
        before["lexical"]["weight"],
    )
    assert card.lexical.sha256 == before["lexical"]["sha256"]
    old = SentimentModel.load(trained, threads=1, runtime="torch")
    new = SentimentModel.load(tmp_path / "again", threads=1, runtime="torch")
    texts = [r.text for r in data.split.test[:50]]
    assert np.allclose(old.logits(texts), new.logits(texts), atol=1e-6)
    other = prepare_data([SHIPPED_CORPUS], sample=1400)
    with pytest.raises(ValueError, match="another split"):
        repackage(other, trained, tmp_path / "other", progress=False)


def test_fine_tuning_a_local_checkpoint_and_distilling_from_it(
    trained: Path, data: PreparedData, tmp_path: Path
) -> None:
    """The e5 teacher path with a tiny local checkpoint standing in for e5: fine-tune it,
    ensemble with TF-IDF, distil into a student, and package the student for serving."""
    from training.distil import DistilConfig, import_student, run

    config = DistilConfig(
        teacher_epochs=1,
        teacher_batch_size=32,
        teacher_learning_rate=1e-3,
        teacher_max_length=64,
        ensemble_weights=(0.0, 0.5),
        augment_copies=1,
        students=[BertSpec(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)],
        student_tokenizers=["wp2000"],
        student_epochs=1,
        student_batch_size=64,
        student_max_length=64,
        progress=False,
    )
    report = run(data, trained, config, tmp_path / "work", tmp_path / "run")
    assert 0.5 < report["teacher_validation_accuracy"] <= 1
    assert report["ensemble_weight"] in (0.0, 0.5)
    logits = np.load(tmp_path / "run" / "teacher_logits.npz")
    assert len(logits["augmented"]) == len(data.split.train)
    result = import_student(data, tmp_path / "run", 0, tmp_path / "student", progress=False)
    assert result.card.start["kind"] == "distilled"
    assert result.card.distillation is not None and result.card.distil_config is not None
    model = SentimentModel.load(tmp_path / "student", threads=1)
    assert len(model.predict_batch(["不错"])) == 1


def test_optuna_tuning_with_a_tiny_budget(data: PreparedData, tmp_path: Path) -> None:
    from training.tune import tune

    small = prepare_data([SHIPPED_CORPUS], sample=500)
    result = tune(small, tmp_path, trials=2, epochs=0.5, progress=False)
    assert len(result["trials"]) == 2
    assert 0 < result["best_value"] <= 1
    assert (tmp_path / "tuning.json").is_file()
