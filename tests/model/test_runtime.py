import shutil
from pathlib import Path

import numpy as np
import pytest

from model.corpus import SHIPPED_CORPUS
from model.predictor import SentimentModel
from model.registry import resolve_model_dir
from model.runtime import ONNX_FILE, load_forward
from model.text import clean_text
from training.data import load_file


@pytest.fixture(scope="module")
def model_dir(tiny_registry: Path) -> Path:
    return resolve_model_dir(tiny_registry, "sentiment")


@pytest.fixture(scope="module")
def corpus_texts() -> list[str]:
    reviews, _ = load_file(SHIPPED_CORPUS)
    return [clean_text(r.text) for r in reviews[::97]][:400]


def test_packaging_exports_onnx_and_records_both_runtimes(model_dir: Path) -> None:
    model = SentimentModel.load(model_dir, threads=1)
    card = model.card
    assert (model_dir / ONNX_FILE).is_file()
    assert card.onnx is not None and card.onnx.file == ONNX_FILE
    assert card.onnx.bytes == (model_dir / ONNX_FILE).stat().st_size
    assert card.served_runtime == "onnx-int8"
    assert set(card.runtimes) == {"torch", "onnx-int8"}
    served = card.runtimes["onnx-int8"]
    # The headline metrics are those of the runtime that serves the model (for a hybrid: its
    # network half's figure is that runtime's, and the headline is the fused model's).
    network = card.metrics["test"]["accuracy"]
    if card.lexical is not None:
        network = card.metrics["test"]["accuracy_of_parts"]["network"]
    assert network == pytest.approx(served["test_accuracy"])
    assert 0.9 <= served["test_agreement_with_torch"] <= 1.0
    assert model.runtime == "onnx-int8"  # "auto" takes the export


def test_onnx_and_torch_logits_agree(model_dir: Path, corpus_texts: list[str]) -> None:
    onnx = SentimentModel.load(model_dir, threads=1, runtime="onnx")
    torch = SentimentModel.load(model_dir, threads=1, runtime="torch")
    assert (onnx.runtime, torch.runtime) == ("onnx-int8", "torch")
    a, b = onnx.logits(corpus_texts), torch.logits(corpus_texts)
    assert a.shape == b.shape == (len(corpus_texts), 2)
    assert np.abs(a - b).max() < 0.1
    confident = np.abs(b[:, 1] - b[:, 0]) > 0.2
    assert (a.argmax(1) == b.argmax(1))[confident].all()


def test_auto_falls_back_to_torch_without_an_export(model_dir: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare)
    (bare / ONNX_FILE).unlink()
    assert SentimentModel.load(bare, threads=1).runtime == "torch"
    with pytest.raises(FileNotFoundError, match="no ONNX export"):
        load_forward(bare, runtime="onnx", threads=1)


def test_unknown_runtime_is_refused(model_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown model runtime"):
        load_forward(model_dir, runtime="tensorrt", threads=1)
