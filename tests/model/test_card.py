"""The model card: the shipped one loads typed, cards round-trip, and committed model
directories name no path of the machine that built them."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pytest

from model.card import CARD_FILE, DataCard, DataSource, LexicalCard, ModelCard, NeutralBandCard
from model.corpus import SHIPPED_CORPUS
from model.labels import BINARY_SENTIMENTS, SENTIMENTS
from model.lexical import VOCABULARY_FILE, CharNgrams
from model.paths import REPO_ROOT, content_sha256, portable_path
from model.registry import resolve_model_dir

REGISTRY = REPO_ROOT / "model" / "registry"
# Files Hugging Face writes (vocabularies hold tokens such as "/"), and the TF-IDF half's
# vocabulary (character n-grams such as "/12"): not ours to describe.
_HF_FILES = {
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    VOCABULARY_FILE,
}
# A path of some machine inside prose: /tmp/..., /work/..., /home/..., C:\...
_PROSE_PATH = re.compile(r"(?<![\w.:/])/(?:tmp|work|home|root|Users|var|opt|mnt|srv)/|[A-Z]:\\")


def _card(**changes: Any) -> ModelCard:
    values: dict[str, Any] = {
        "name": "sentiment",
        "version": "v1",
        "model_labels": BINARY_SENTIMENTS,
        "temperature": 1.5,
        "neutral_band": NeutralBandCard(half_width=0.8, p_positive_range=(0.4, 0.6)),
        "max_length": 64,
        "text_prefix": "",
        "start": {"kind": "scratch"},
        "training": {"epochs": 1.0},
        "data": DataCard(
            sources=(DataSource(path="clickhouse:reviews", rows=3),),
            cleaning={"rows_in": 3},
            split={"sha256": "abc"},
        ),
        "onnx": None,
        "metrics": {"test": {"accuracy": 0.9}},
        "learning_curves": {"epochs": [1.0]},
    }
    return ModelCard(**{**values, **changes})


def test_the_shipped_card_loads_typed() -> None:
    directory = resolve_model_dir(REGISTRY, "sentiment")
    card = ModelCard.read(directory)
    assert card.version == directory.name
    assert card.model_labels == BINARY_SENTIMENTS and card.served_labels == SENTIMENTS
    assert card.neutral_band is not None and card.band.half_width > 0
    assert card.onnx is not None and (directory / card.onnx.file).is_file()
    assert card.data.sources[0].path == SHIPPED_CORPUS.relative_to(REPO_ROOT).as_posix()
    assert len(card.data.split_sha256 or "") == 64
    # Every key of the shipped card is a field: reading and writing lose nothing.
    assert card.to_dict() == json.loads((directory / CARD_FILE).read_text(encoding="utf-8"))


def test_a_card_round_trips_and_leaves_unset_optional_fields_out(tmp_path: Path) -> None:
    card = _card(distilled=False)
    card.write(tmp_path)
    assert ModelCard.read(tmp_path) == card
    written = json.loads((tmp_path / CARD_FILE).read_text(encoding="utf-8"))
    assert written["distilled"] is False
    assert written["onnx"] is None and written["neutral_band"]["center"] == 0.0
    assert "distillation" not in written and "sha256" not in written["data"]["sources"][0]
    assert list(written)[:3] == ["created_at", "name", "version"]


def test_a_hybrid_card_round_trips_typed(tmp_path: Path) -> None:
    lexical = LexicalCard(
        vocabulary_file="lexical.vocab.json",
        weights_file="lexical.safetensors",
        sha256={"lexical.vocab.json": "ab", "lexical.safetensors": "cd"},
        features=3,
        ngram_range=(1, 3),
        c=4.0,
        weight=0.25,
        selection={"validation_by_weight": {"0.25": {"accuracy": 0.9}}},
    )
    card = _card(lexical=lexical, retraining={"served_version": "v0", "mix": {"corpus_rows": 9}})
    card.write(tmp_path)
    read = ModelCard.read(tmp_path)
    assert read == card
    assert read.lexical is not None and read.lexical.ngrams == CharNgrams(1, 3, True)
    assert read.retraining == {"served_version": "v0", "mix": {"corpus_rows": 9}}
    assert "lexical" not in _card().to_dict()  # a network alone writes no key


def test_unknown_keys_are_ignored_and_late_fields_default(tmp_path: Path) -> None:
    written = _card().to_dict()
    for late in ("served_runtime", "onnx", "runtimes"):
        del written[late]
    written["from_the_future"] = {"x": 1}
    written["neutral_band"]["also_new"] = 2
    (tmp_path / CARD_FILE).write_text(json.dumps(written), encoding="utf-8")
    card = ModelCard.read(tmp_path)
    assert card.served_runtime == "torch" and card.onnx is None and card.runtimes == {}
    assert card.band.half_width == 0.8


def test_a_directory_without_a_card_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a ReviewPulse model directory"):
        ModelCard.read(tmp_path)


def test_paths_are_repository_relative_or_content_hashes(tmp_path: Path) -> None:
    assert portable_path(SHIPPED_CORPUS) == "data/reviews/online_shopping_10_cats.zip"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.bin").write_bytes(b"weights")
    elsewhere = tmp_path / "copy"
    (elsewhere / "a").mkdir(parents=True)
    (elsewhere / "a" / "w.bin").write_bytes(b"weights")
    assert portable_path(tmp_path / "a") == f"sha256:{content_sha256(tmp_path / 'a')}"
    assert portable_path(tmp_path / "a") == portable_path(elsewhere / "a")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def test_committed_model_directories_hold_no_absolute_path() -> None:
    documents = [
        path
        for path in [*REGISTRY.rglob("*.json"), *REGISTRY.rglob("*.md")]
        if path.name not in _HF_FILES
    ]
    assert any(p.name == CARD_FILE for p in documents)
    for path in documents:
        text = path.read_text(encoding="utf-8")
        assert not _PROSE_PATH.search(text), path
        if path.suffix == ".json":
            for value in _strings(json.loads(text)):
                absolute = PurePosixPath(value).is_absolute() or PureWindowsPath(value).drive
                assert not absolute, f"{path}: {value}"
