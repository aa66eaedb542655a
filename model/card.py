"""The model card: ``reviewpulse.json`` in every model directory.

Training writes it last, once the directory is calibrated and evaluated
(:meth:`ModelCard.write`); serving reads the version, temperature, neutral band, token limit
and text prefix from it (:meth:`ModelCard.read`). Keys this class does not know are ignored
on reading, so cards written by other versions of the pipeline still load; fields that older
cards lack (the ONNX export came later) have defaults, and optional fields left at None
are not written. Paths in a card are portable
(:func:`model.paths.portable_path`): repository-relative, or content hashes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from model.jsonio import write_json
from model.labels import SENTIMENTS
from model.lexical import CharNgrams
from model.neutral import NeutralBand
from model.profile import TrafficProfile

CARD_FILE = "reviewpulse.json"


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that are fields of dataclass ``cls``."""
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


def _plain(value: Any) -> Any:
    """Dataclasses as dicts (dropping optional fields left at None), recursively."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in fields(value)
            if not (f.default is None and getattr(value, f.name) is None)
        }
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class NeutralBandCard:
    """The calibrated neutral band of a two-class model, and how it was chosen."""

    center: float = 0.0  # on the temperature-scaled log-odds
    half_width: float = 0.0
    p_positive_range: tuple[float, float] | None = None  # the band as P(positive), for people
    validation_share: float | None = None
    validation_accuracy_inside: float | None = None
    validation_accuracy_outside: float | None = None
    rule: str | None = None

    @property
    def band(self) -> NeutralBand:
        return NeutralBand(center=self.center, half_width=self.half_width)

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        known = _known(cls, data)
        if known.get("p_positive_range") is not None:
            known["p_positive_range"] = tuple(known["p_positive_range"])
        return cls(**known)


@dataclass(frozen=True, kw_only=True)
class OnnxCard:
    """The int8 ONNX export next to the weights (see ``training.onnx_export``)."""

    file: str
    bytes: int
    sha256: str
    opset: int
    fused_operators: Mapping[str, int]
    quantization: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_known(cls, data))


@dataclass(frozen=True, kw_only=True)
class LexicalCard:
    """The lexical half of a hybrid model (:mod:`model.lexical`): its files, features, and
    the fusion weight chosen on validation."""

    vocabulary_file: str  # JSON list of n-grams, in column order
    weights_file: str  # safetensors: idf, coef, intercept
    sha256: Mapping[str, str]  # file name -> content hash, checked at load
    features: int
    ngram_range: tuple[int, int]
    lowercase: bool = True
    c: float  # LogisticRegression's inverse regularisation, chosen on validation
    weight: float  # the network's share of the fused log-odds (1 - weight: the lexical's)
    selection: Mapping[str, Any] = field(default_factory=dict)  # grids and validation figures

    @property
    def ngrams(self) -> CharNgrams:
        low, high = self.ngram_range
        return CharNgrams(min_n=low, max_n=high, lowercase=self.lowercase)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        known = _known(cls, data)
        known["ngram_range"] = tuple(known["ngram_range"])
        return cls(**known)


@dataclass(frozen=True, kw_only=True)
class DataSource:
    """One input of the training data: a file (portable path and hash) or ClickHouse."""

    path: str  # repository-relative, ``sha256:<hex>``, or ``clickhouse:reviews``
    sha256: str | None = None
    rows: int
    skipped: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_known(cls, data))


@dataclass(frozen=True, kw_only=True)
class DataCard:
    """Where the reviews came from, what cleaning dropped, and the split they made."""

    sources: tuple[DataSource, ...] = ()
    cleaning: Mapping[str, int] = field(default_factory=dict)
    split: Mapping[str, Any] = field(default_factory=dict)

    @property
    def split_sha256(self) -> str | None:
        """The hash naming the exact train/validation/test split."""
        return self.split.get("sha256")

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        known = _known(cls, data)
        known["sources"] = tuple(DataSource.from_dict(s) for s in known.get("sources", ()))
        return cls(**known)


@dataclass(frozen=True, kw_only=True)
class ModelCard:
    """Everything known about one model version; JSON keys are the field names."""

    created_at: str = field(default_factory=_now)
    name: str
    version: str
    model_labels: tuple[str, ...]  # the network's output order (config.json id2label)
    served_labels: tuple[str, ...] = SENTIMENTS
    temperature: float
    neutral_band: NeutralBandCard | None  # None: the model has its own neutral class
    max_length: int  # tokens the model was trained on
    text_prefix: str  # prepended to every cleaned text (e5 expects "query: ")
    start: Mapping[str, Any]  # what training started from (scratch, checkpoint, ...)
    training: Mapping[str, Any]  # the training options, time, steps and parameter count
    data: DataCard
    served_runtime: str = "torch"  # the forward the figures below were computed with
    onnx: OnnxCard | None  # None: not exported (cards from before the export have no key)
    runtimes: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    metrics: Mapping[str, Mapping[str, Any]]  # "validation", "test": figures of the split
    learning_curves: Mapping[str, Any]
    distilled: bool | None = None
    distillation: Mapping[str, Any] | None = None
    distil_config: Mapping[str, Any] | None = None
    lexical: LexicalCard | None = None  # None: the network alone (no TF-IDF half)
    retraining: Mapping[str, Any] | None = None  # reviewpulse retrain: traffic, mix, gate
    # The model's traffic profile on the validation split (model.profile.reference_profile):
    # what the stream's drift monitoring compares live traffic with. None on older cards.
    reference: TrafficProfile | None = None

    @property
    def band(self) -> NeutralBand:
        """The served neutral band (empty for a model with a neutral class)."""
        return self.neutral_band.band if self.neutral_band else NeutralBand()

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        known = _known(cls, data)
        known["model_labels"] = tuple(known["model_labels"])
        if "served_labels" in known:
            known["served_labels"] = tuple(known["served_labels"])
        band = known.get("neutral_band")
        known["neutral_band"] = NeutralBandCard.from_dict(band) if band else None
        known["data"] = DataCard.from_dict(known.get("data") or {})
        onnx = known.get("onnx")
        known["onnx"] = OnnxCard.from_dict(onnx) if onnx else None
        lexical = known.get("lexical")
        known["lexical"] = LexicalCard.from_dict(lexical) if lexical else None
        reference = known.get("reference")
        known["reference"] = TrafficProfile.from_dict(reference) if reference else None
        return cls(**known)

    @classmethod
    def read(cls, directory: Path) -> Self:
        path = Path(directory) / CARD_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: not a ReviewPulse model directory")
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def write(self, directory: Path) -> Path:
        path = Path(directory) / CARD_FILE
        write_json(path, self.to_dict())
        return path
