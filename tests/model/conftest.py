"""A tiny but really trained model, built once per session through the training pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.corpus import SHIPPED_CORPUS
from model.registry import publish
from training.bert import BertSpec, TrainOptions
from training.pipeline import prepare_data
from training.train import TrainRequest, train_and_package


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry holding one tiny model (trained on 1,200 corpus reviews) as CURRENT."""
    root = tmp_path_factory.mktemp("registry")
    data = prepare_data([SHIPPED_CORPUS], sample=1200)
    request = TrainRequest(
        spec=BertSpec(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
        options=TrainOptions(epochs=2, batch_size=32, learning_rate=3e-3, max_length=64),
        tag="tiny",
    )
    result = train_and_package(data, request, root / "build", progress=False)
    publish(root, "sentiment", result.card.version, result.directory)
    return root
