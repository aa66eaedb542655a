"""``reviewpulse train``: data -> BERT -> calibration -> model directory -> registry."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.card import LexicalCard, ModelCard, NeutralBandCard
from model.labels import BINARY_SENTIMENTS
from model.lexical import fuse
from model.neutral import NeutralBand, served_probabilities, softmax
from model.paths import portable_path
from model.predictor import forward_logits
from model.registry import publish
from model.runtime import load_forward
from training.artifact import make_version, save_model_dir
from training.bert import (
    BertSpec,
    History,
    TrainOptions,
    checkpoint_model,
    mlm_pretrain,
    predict_logits,
    scratch_model,
    seed_everything,
    train_classifier,
)
from training.calibrate import choose_neutral_band, fit_temperature
from training.data import Review
from training.evaluate import classification_figures, served_label_share
from training.lexical import LexicalRequest, add_lexical_half
from training.onnx_export import export_onnx
from training.pipeline import PreparedData, encode, label_ids
from training.selection import WeightedValidation
from training.vocab import (
    SPECIAL_TOKENS,
    build_char_vocab,
    build_tokenizer,
    build_wordpiece_tokenizer,
    save_hf_tokenizer,
)


@dataclass
class TrainRequest:
    spec: BertSpec = field(default_factory=BertSpec)
    options: TrainOptions = field(default_factory=TrainOptions)
    init_checkpoint: Path | None = None  # fine-tune this local HF dir instead of scratch
    mlm_epochs: float = 0.0
    min_char_count: int = 2
    tokenizer: str = "wordpiece"  # "wordpiece" (frequent words) or "char" (BERT-Chinese)
    vocab_size: int = 20000  # for "wordpiece"
    # Distillation: teacher logits for the training split followed by ``extra_texts``
    # (unlabelled text such as augmented reviews, hard-labelled by ``extra_labels``).
    teacher_logits: np.ndarray | None = None
    extra_texts: list[str] = field(default_factory=list)
    extra_labels: np.ndarray | None = None
    band_max_accuracy: float = 0.75
    band_max_share: float = 0.1
    tag: str = ""
    lexical: LexicalRequest | None = field(default_factory=LexicalRequest)  # None: no hybrid


@dataclass
class TrainResult:
    directory: Path
    card: ModelCard
    history: History
    val_logits: np.ndarray
    test_logits: np.ndarray


def _tokenizer_for(request: TrainRequest, data: PreparedData, workdir: Path) -> tuple[Any, Path]:
    """``(tokenizers.Tokenizer, directory with the HF tokenizer files)``."""
    from tokenizers import Tokenizer

    if request.init_checkpoint is not None:
        path = Path(request.init_checkpoint)
        return Tokenizer.from_file(str(path / "tokenizer.json")), path
    texts = [r.text for r in data.split.train]
    if request.tokenizer == "wordpiece":
        tokenizer = build_wordpiece_tokenizer(texts, vocab_size=request.vocab_size)
    elif request.tokenizer == "char":
        tokenizer = build_tokenizer(build_char_vocab(texts, min_count=request.min_char_count))
    else:
        raise ValueError(f"unknown tokenizer kind {request.tokenizer!r}")
    tok_dir = workdir / "tokenizer"
    save_hf_tokenizer(tokenizer, tok_dir, max_length=request.options.max_length)
    # Re-read what was saved, so training sees exactly what serving will load.
    return Tokenizer.from_file(str(tok_dir / "tokenizer.json")), tok_dir


def _copy_tokenizer_files(source: Path, workdir: Path) -> Path:
    import shutil

    names = (
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "sentencepiece.bpe.model",
    )
    target = workdir / "tokenizer"
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
    return target


@dataclass
class Fitted:
    """A trained classifier and what packaging needs to know about it."""

    model: Any
    tokenizer_dir: Path
    history: History
    start: dict[str, Any]
    mlm_losses: list[float] = field(default_factory=list)


def fit(
    data: PreparedData,
    request: TrainRequest,
    workdir: Path,
    *,
    progress: bool = True,
    on_epoch: Callable[[Any, int, History], None] | None = None,
) -> Fitted:
    """Train a classifier on the training split (validation only for the learning curves).
    ``on_epoch(model, epoch, history)`` is called at the end of every epoch."""
    seed_everything(request.options.seed)
    options = request.options
    labels = data.labels
    split = data.split
    tokenizer, tok_dir = _tokenizer_for(request, data, workdir)
    if request.init_checkpoint is not None:
        tok_dir = _copy_tokenizer_files(tok_dir, workdir)
    pad_id = _pad_id(tokenizer)
    prefix = options.text_prefix
    train_ids = encode(tokenizer, [prefix + r.text for r in split.train], options.max_length)
    val_ids = encode(tokenizer, [prefix + r.text for r in split.validation], options.max_length)
    y_train = label_ids(split.train, labels)
    if request.extra_texts:
        if request.extra_labels is None or len(request.extra_labels) != len(request.extra_texts):
            raise ValueError("extra_texts need one extra_label each")
        extra_ids = encode(tokenizer, [prefix + t for t in request.extra_texts], options.max_length)
        train_ids = train_ids + extra_ids
        y_train = np.concatenate([y_train, np.asarray(request.extra_labels, dtype=np.int64)])
    if request.teacher_logits is not None and len(request.teacher_logits) != len(train_ids):
        raise ValueError("teacher_logits must have one row per training (and extra) text")
    if request.init_checkpoint is not None:
        model = checkpoint_model(request.init_checkpoint, labels=labels)
        start: dict[str, Any] = {
            "kind": "checkpoint",
            "path": portable_path(request.init_checkpoint),
        }
    else:
        model = scratch_model(
            request.spec, vocab_size=tokenizer.get_vocab_size(), labels=labels, pad_token_id=pad_id
        )
        start = {
            "kind": "scratch",
            "spec": asdict(request.spec),
            "tokenizer": request.tokenizer,
            "vocab_size": tokenizer.get_vocab_size(),
        }
    mlm_losses: list[float] = []
    if request.mlm_epochs > 0:
        mlm_losses = mlm_pretrain(
            model,
            train_ids[: len(split.train)] + val_ids,  # text only: labels are never seen
            pad_id=pad_id,
            mask_id=tokenizer.token_to_id("[MASK]"),
            vocab_size=tokenizer.get_vocab_size(),
            special_ids=[tokenizer.token_to_id(t) for t in SPECIAL_TOKENS],
            options=replace(options, epochs=request.mlm_epochs),
            progress=progress,
        )
    history = train_classifier(
        model,
        train_ids,
        y_train,
        pad_id=pad_id,
        options=options,
        val_ids=val_ids,
        val_labels=label_ids(split.validation, labels),
        soft_logits=request.teacher_logits,
        progress=progress,
        on_epoch=None if on_epoch is None else lambda epoch, h: on_epoch(model, epoch, h),
    )
    return Fitted(model, tok_dir, history, start, mlm_losses)


def _pad_id(tokenizer: Any) -> int:
    for token in ("[PAD]", "<pad>"):
        if (pad := tokenizer.token_to_id(token)) is not None:
            return pad
    return 0


def package(
    data: PreparedData,
    fitted: Fitted,
    out_dir: Path,
    *,
    options: TrainOptions,
    tag: str = "",
    band_max_accuracy: float = 0.75,
    band_max_share: float = 0.1,
    provenance: Mapping[str, Any] | None = None,
    progress: bool = True,
    onnx: bool = True,
    lexical: LexicalRequest | None = None,
    validation: WeightedValidation | None = None,
) -> TrainResult:
    """Write the model directory (and its int8 ONNX export), then calibrate on validation and
    evaluate on test once, through the runtime that serves it (ONNX when exported).
    ``provenance``: the card's optional ``distilled``/``distillation``/``distil_config``
    (and, for retraining, ``retraining``). ``lexical``: also fit the TF-IDF half of a hybrid
    on the training split (:mod:`training.lexical`) and calibrate the fused logits; the card's
    ``runtimes`` then still describe the network alone. ``validation``: how validation
    reviews weigh in temperature and neutral band (retraining: corpus and traffic by share;
    None: alike); the fusion weight follows ``lexical.validation``."""
    from tokenizers import Tokenizer

    labels = data.labels
    split = data.split
    model = fitted.model
    tokenizer = Tokenizer.from_file(str(fitted.tokenizer_dir / "tokenizer.json"))
    pad_id = _pad_id(tokenizer)
    y_val = label_ids(split.validation, labels)
    y_test = label_ids(split.test, labels)
    prefix = options.text_prefix
    val_ids = encode(tokenizer, [prefix + r.text for r in split.validation], options.max_length)
    test_ids = encode(tokenizer, [prefix + r.text for r in split.test], options.max_length)
    val_logits = predict_logits(model, val_ids, pad_id=pad_id, progress=progress, desc="validation")
    test_logits = predict_logits(model, test_ids, pad_id=pad_id, progress=progress, desc="test")
    save_model_dir(out_dir, model, fitted.tokenizer_dir)
    runtimes = {"torch": _runtime_figures(val_logits, y_val, test_logits, y_test)}
    onnx_card = None
    served_runtime = "torch"
    if onnx:
        onnx_card = export_onnx(out_dir)
        forward = load_forward(out_dir, runtime="onnx", threads=torch.get_num_threads())
        served_val, served_test = (
            forward_logits(forward, ids, pad_id=pad_id, num_labels=len(labels))
            for ids in (val_ids, test_ids)
        )
        runtimes[forward.name] = _runtime_figures(served_val, y_val, served_test, y_test)
        runtimes[forward.name]["test_agreement_with_torch"] = float(
            (served_test.argmax(1) == test_logits.argmax(1)).mean()
        )
        val_logits, test_logits = served_val, served_test
        served_runtime = forward.name
    lexical_card: LexicalCard | None = None
    parts: dict[str, dict[str, float]] = {}
    if lexical is not None and labels == BINARY_SENTIMENTS:
        val_texts = [prefix + r.text for r in split.validation]
        test_texts = [prefix + r.text for r in split.test]
        lexical_card, lexical_model = add_lexical_half(
            out_dir,
            [prefix + r.text for r in split.train],
            label_ids(split.train, labels),
            val_texts,
            y_val,
            val_logits,
            lexical,
        )
        val_lexical, test_lexical = (lexical_model.log_odds(t) for t in (val_texts, test_texts))
        for name, network, lexical_odds, y in (
            ("validation", val_logits, val_lexical, y_val),
            ("test", test_logits, test_lexical, y_test),
        ):
            parts[name] = {
                "network": float((network.argmax(1) == y).mean()),
                "lexical": float(((lexical_odds > 0) == (y == 1)).mean()),
            }
        val_logits = fuse(val_logits, val_lexical, lexical_card.weight)
        test_logits = fuse(test_logits, test_lexical, lexical_card.weight)
    weights = None if validation is None else validation.sample_weights()
    temperature = fit_temperature(val_logits, y_val, weights)
    band_card: NeutralBandCard | None = None
    band = NeutralBand()
    if labels == BINARY_SENTIMENTS:
        choice = choose_neutral_band(
            (val_logits[:, 1] - val_logits[:, 0]) / temperature,
            y_val == 1,
            max_accuracy=band_max_accuracy,
            max_share=band_max_share,
            sample_weight=weights,
        )
        band, band_card = choice.band, choice.to_card()
    figures = {
        name: classification_figures(
            softmax(logits, temperature), y, [r.category for r in part], labels
        )
        for name, logits, y, part in (
            ("validation", val_logits, y_val, split.validation),
            ("test", test_logits, y_test, split.test),
        )
    }
    for name, accuracy in parts.items():
        figures[name]["accuracy_of_parts"] = accuracy  # the hybrid's halves, each alone
    figures["test"]["ece_uncalibrated"] = classification_figures(
        softmax(test_logits), y_test, [r.category for r in split.test], labels
    )["ece"]
    served = served_probabilities(test_logits, labels, temperature, band)
    figures["test"]["served_label_share"] = served_label_share(served)
    history = fitted.history
    card = ModelCard(
        name="sentiment",
        version=make_version(tag),
        model_labels=labels,
        temperature=temperature,
        neutral_band=band_card,
        max_length=options.max_length,
        text_prefix=options.text_prefix,
        start=fitted.start,
        training={
            **asdict(options),
            "seconds": history.seconds,
            "steps": history.steps,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "mlm_loss_last": float(np.mean(fitted.mlm_losses[-50:])) if fitted.mlm_losses else None,
        },
        data=data.describe(),
        served_runtime=served_runtime,
        onnx=onnx_card,
        runtimes=runtimes,
        metrics=figures,
        learning_curves=history.to_dict(),
        lexical=lexical_card,
        **(provenance or {}),
    )
    card.write(out_dir)
    card = _with_reference_profile(card, out_dir, split.validation)
    return TrainResult(Path(out_dir), card, history, val_logits, test_logits)


def _with_reference_profile(
    card: ModelCard, directory: Path, validation: list[Review]
) -> ModelCard:
    """The card again, with the model's traffic profile on the validation split, overall and
    per category, with its labels (what drift monitoring compares live traffic with),
    computed by the packaged model as it serves."""
    from model.predictor import SentimentModel
    from model.profile import reference_profile

    model = SentimentModel.load(directory, threads=torch.get_num_threads())
    profile = reference_profile(
        model,
        [r.text for r in validation],
        labels=[r.label for r in validation],
        categories=[r.category for r in validation],
    )
    card = replace(card, reference=profile)
    card.write(directory)
    return card


def _runtime_figures(
    val_logits: np.ndarray, y_val: np.ndarray, test_logits: np.ndarray, y_test: np.ndarray
) -> dict[str, float]:
    return {
        "validation_accuracy": float((val_logits.argmax(1) == y_val).mean()),
        "test_accuracy": float((test_logits.argmax(1) == y_test).mean()),
    }


def train_and_package(
    data: PreparedData, request: TrainRequest, out_dir: Path, *, progress: bool = True
) -> TrainResult:
    """Train, calibrate on validation, evaluate on test once, write ``out_dir``."""
    with tempfile.TemporaryDirectory() as tmp:
        fitted = fit(data, request, Path(tmp), progress=progress)
        return package(
            data,
            fitted,
            out_dir,
            options=request.options,
            tag=request.tag,
            band_max_accuracy=request.band_max_accuracy,
            band_max_share=request.band_max_share,
            provenance={"distilled": request.teacher_logits is not None},
            progress=progress,
            lexical=request.lexical,
        )


def repackage(
    data: PreparedData,
    model_dir: Path,
    out_dir: Path,
    *,
    tag: str = "",
    progress: bool = True,
    lexical: LexicalRequest | None = None,
) -> TrainResult:
    """Package a finished model directory again, network weights unchanged, through today's
    :func:`package` (calibration, test evaluation, ONNX export, and with ``lexical`` a TF-IDF
    half fitted on the training split: a hybrid) as a new version."""
    card = ModelCard.read(model_dir)
    if card.model_labels != tuple(data.labels):
        raise ValueError(f"{model_dir} predicts {card.model_labels}, the data has {data.labels}")
    if card.data.split_sha256 not in (None, data.split.sha256):
        raise ValueError(f"{model_dir} was evaluated on another split than this data's")
    known = {f.name for f in fields(TrainOptions)}
    options = TrainOptions(**{k: v for k, v in card.training.items() if k in known})
    start = {"kind": "repackaged", "version": card.version, "start": card.start}
    with tempfile.TemporaryDirectory() as tmp:
        fitted = Fitted(
            checkpoint_model(model_dir, labels=data.labels),
            _copy_tokenizer_files(Path(model_dir), Path(tmp)),
            History(**card.learning_curves),
            start,
        )
        carried = ("distilled", "distillation", "distil_config")
        return package(
            data,
            fitted,
            out_dir,
            options=options,
            tag=tag,
            provenance={k: getattr(card, k) for k in carried if getattr(card, k) is not None},
            progress=progress,
            lexical=lexical,
        )


def publish_result(result: TrainResult, registry: Path, name: str, *, make_current: bool) -> Path:
    return publish(registry, name, result.card.version, result.directory, make_current=make_current)


def summary_line(result: TrainResult) -> str:
    test = result.card.metrics["test"]
    val = result.card.metrics["validation"]
    return json.dumps(
        {
            "version": result.card.version,
            "validation_accuracy": round(val["accuracy"], 4),
            "test_accuracy": round(test["accuracy"], 4),
            "test_macro_f1": round(test["macro_f1"], 4),
            "test_ece": round(test["ece"], 4),
            "train_seconds": round(result.history.seconds, 1),
        }
    )
