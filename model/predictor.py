"""The served sentiment model: a Hugging Face sequence-classification directory.

The directory holds what ``save_pretrained`` writes (weights, config with ``id2label``,
tokenizer), its int8 ONNX export (see :mod:`model.runtime`), and ``reviewpulse.json``, the model
card (:class:`model.card.ModelCard`): version, temperature and the neutral band (see
:mod:`model.neutral`). ``predict_batch`` is blocking; callers on an event loop run it in an
executor.

A call's texts are cut into length-sorted groups of at most ``token_budget`` padded tokens
each (:func:`token_budget_batches`); the budget is the only limit on a group.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.card import ModelCard
from model.cputime import ThreadCpu
from model.labels import BINARY_SENTIMENTS, SENTIMENTS, Sentiment
from model.lexical import LexicalModel, fuse
from model.neutral import served_probabilities
from model.runtime import Forward, load_forward
from model.text import clean_text

DEFAULT_TOKEN_BUDGET = 256


@dataclass(frozen=True)
class Prediction:
    label: Sentiment
    confidence: float  # probability of `label`
    probabilities: dict[str, float]  # all three labels, sums to 1
    tokens: int = 0  # tokens of the text the model saw (after truncation, no special tokens)
    unknown_tokens: int = 0  # of which the tokenizer's unknown token ([UNK])


def token_budget_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Indices grouped by length so that each padded batch holds at most ``token_budget``
    tokens (a text longer than the budget goes alone): long reviews don't make short ones
    pay for padding."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current and (len(current) + 1) * lengths[index] > token_budget:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def forward_logits(
    forward: Forward,
    encoded: Sequence[Sequence[int]],
    *,
    pad_id: int,
    num_labels: int,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    cpu: ThreadCpu | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> np.ndarray:
    """Logits for token-id sequences, in input order, padded per length-grouped batch;
    ``meanwhile`` runs on this thread while the runtime's own threads run them."""
    groups = token_budget_batches([len(x) for x in encoded], token_budget)
    padded = []
    for group in groups:
        width = len(encoded[group[-1]])
        ids = np.full((len(group), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(group), width), dtype=np.int64)
        for row, index in enumerate(group):
            seq = encoded[index]
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        padded.append((ids, mask))
    out = np.zeros((len(encoded), num_labels), dtype=np.float32)
    for group, logits in zip(groups, forward.map(padded, cpu, meanwhile), strict=True):
        out[group] = logits
    return out


def model_labels_of(directory: Path) -> list[str]:
    """The network's labels in output order, from the directory's ``config.json``."""
    config = json.loads((Path(directory) / "config.json").read_text(encoding="utf-8"))
    id2label = {int(k): str(v) for k, v in config["id2label"].items()}
    return [id2label[i] for i in range(len(id2label))]


@dataclass(frozen=True)
class ServedTokenizer:
    """The Rust ``tokenizers.Tokenizer`` of a model directory and its pad and unknown ids.

    Read from ``tokenizer.json`` and the special-token files that ``save_pretrained`` writes,
    without importing ``transformers`` (seconds of start-up, and torch with it, that the ONNX
    runtime never needs). ``tests/model/test_predictor.py`` checks the ids against
    ``AutoTokenizer``'s."""

    encoder: Any
    pad_token_id: int
    unk_token_id: int | None

    @classmethod
    def load(cls, directory: Path) -> ServedTokenizer:
        from tokenizers import Tokenizer

        directory = Path(directory)
        encoder = Tokenizer.from_file(str(directory / "tokenizer.json"))
        special: dict[str, Any] = {}
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            path = directory / name
            if path.exists():
                special |= json.loads(path.read_text(encoding="utf-8"))

        def token_id(role: str) -> int | None:
            token = special.get(role)
            if isinstance(token, dict):  # an AddedToken written out
                token = token.get("content")
            return None if not isinstance(token, str) else encoder.token_to_id(token)

        pad = token_id("pad_token")
        if pad is None:
            raise ValueError(f"{directory}: the tokenizer has no pad token")
        return cls(encoder, pad, token_id("unk_token"))


class SentimentModel:
    """Tokenizer + forward pass + calibration, loaded from one directory."""

    labels: tuple[Sentiment, ...] = SENTIMENTS

    def __init__(
        self,
        forward: Forward,
        tokenizer: ServedTokenizer,
        card: ModelCard,
        *,
        directory: Path,
        model_labels: Sequence[str],
        max_length: int,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
        lexical: LexicalModel | None = None,
    ) -> None:
        if (lexical is None) != (card.lexical is None):
            raise ValueError("the card and the lexical half disagree (hybrid or not)")
        if lexical is not None and tuple(model_labels) != BINARY_SENTIMENTS:
            raise ValueError(f"a lexical half needs a (negative, positive) network: {model_labels}")
        self._lexical = lexical
        self._forward = forward
        self._tokenizer = tokenizer
        self.card = card
        self.directory = Path(directory)  # the model directory it was loaded from
        self.version: str = card.version
        self.runtime: str = forward.name
        self.model_labels: tuple[str, ...] = tuple(model_labels)
        self.temperature = float(card.temperature)
        self.band = card.band
        self.max_length = min(max_length, card.max_length)
        self.text_prefix = card.text_prefix
        # The Rust tokenizer, truncating, without offsets: same ids, less work.
        self._encoder = copy.deepcopy(tokenizer.encoder)
        self._encoder.no_padding()
        self._encoder.enable_truncation(self.max_length)
        self.token_budget = token_budget
        # Token counts per review (drift monitoring): ids minus what the encoder adds to
        # every text (special tokens, and the text prefix), and the unknown token's id.
        self._added_tokens = len(self._encoder.encode(self.text_prefix).ids)
        unknown = tokenizer.unk_token_id
        self._unknown_id: int = -1 if unknown is None else int(unknown)
        # Fail at load time, not on the first batch, if the labels cannot be served.
        served_probabilities(
            np.zeros((1, len(self.model_labels))), self.model_labels, 1.0, self.band
        )

    @classmethod
    def load(
        cls,
        directory: Path,
        *,
        max_length: int = 128,
        threads: int = 2,
        runtime: str = "auto",
        token_budget: int = DEFAULT_TOKEN_BUDGET,
    ) -> SentimentModel:
        """The model in ``directory`` (resolve a registry version with
        :func:`model.registry.resolve_model_dir`). ``runtime``: ``auto`` (the ONNX export when
        present), ``onnx`` or ``torch``; ``token_budget``: see :func:`token_budget_batches`."""
        directory = Path(directory)
        card = ModelCard.read(directory)
        labels = model_labels_of(directory)
        tokenizer = ServedTokenizer.load(directory)
        forward = load_forward(directory, runtime=runtime, threads=threads)
        return cls(
            forward,
            tokenizer,
            card,
            directory=directory,
            model_labels=labels,
            max_length=max_length,
            token_budget=token_budget,
            lexical=_load_lexical(directory, card),
        )

    def encoded(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids (special tokens added, truncated to ``max_length``) of cleaned texts."""
        return [e.ids for e in self._encoder.encode_batch_fast(list(texts))]

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """The logits calibration applies to (model label order), for already-cleaned texts
        (with the text prefix), in input order: the network's, fused with the lexical half's
        when the model is a hybrid (:func:`model.lexical.fuse`)."""
        return self._hybrid_logits(texts, self.encoded(texts))

    def network_logits(self, texts: Sequence[str]) -> np.ndarray:
        """The network's own logits (no lexical half), as :meth:`logits` takes texts."""
        return self._logits_of(self.encoded(texts))

    def lexical_log_odds(self, texts: Sequence[str]) -> np.ndarray | None:
        """The lexical half's log-odds of each text (None: not a hybrid)."""
        return None if self._lexical is None else self._lexical.log_odds(texts)

    def _hybrid_logits(
        self,
        texts: Sequence[str],
        encoded: Sequence[Sequence[int]],
        cpu: ThreadCpu | None = None,
    ) -> np.ndarray:
        """The network's logits, fused with the lexical half's log-odds when the model is a
        hybrid; the lexical half runs on this thread while the runtime's threads run the
        network."""
        lexical, card = self._lexical, self.card.lexical
        if lexical is None or card is None:
            return self._logits_of(encoded, cpu)
        odds: list[np.ndarray] = []
        network = self._logits_of(encoded, cpu, lambda: odds.append(lexical.log_odds(texts)))
        return fuse(network, odds[0], card.weight)

    def _logits_of(
        self,
        encoded: Sequence[Sequence[int]],
        cpu: ThreadCpu | None = None,
        meanwhile: Callable[[], object] | None = None,
    ) -> np.ndarray:
        return forward_logits(
            self._forward,
            encoded,
            pad_id=self._tokenizer.pad_token_id,
            num_labels=len(self.model_labels),
            token_budget=self.token_budget,
            cpu=cpu,
            meanwhile=meanwhile,
        )

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(negative, neutral, positive) probabilities for raw texts."""
        return self._probabilities([clean_text(text) for text in texts])

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        """One prediction per raw input text, in order. Empty texts are classified as given
        (the stream rejects them before they get here)."""
        return self.predict_cleaned([clean_text(text) for text in texts])

    def predict_cleaned(
        self, texts: Sequence[str], cpu: ThreadCpu | None = None
    ) -> list[Prediction]:
        """:meth:`predict_batch` for texts that already went through ``clean_text`` (the
        stream cleans once, at validation, and classifies what it stored). With ``cpu``, the
        thread CPU time goes to its ``tokenize`` and ``forward`` stages (forward: padding,
        the network on whichever thread ran it, fusion, calibration, the predictions)."""
        if not texts:
            return []
        with _stage(cpu, "tokenize"):
            prefixed = [self.text_prefix + text for text in texts]
            encoded = self.encoded(prefixed)
        with _stage(cpu, "forward"):
            return self._predictions(prefixed, encoded, cpu)

    def _predictions(
        self, prefixed: list[str], encoded: list[list[int]], cpu: ThreadCpu | None
    ) -> list[Prediction]:
        rows = served_probabilities(
            self._hybrid_logits(prefixed, encoded, cpu),
            self.model_labels,
            self.temperature,
            self.band,
        )
        predictions = []
        for row, ids in zip(rows, encoded, strict=True):
            best = int(row.argmax())
            predictions.append(
                Prediction(
                    label=SENTIMENTS[best],
                    confidence=float(row[best]),
                    probabilities={name: float(p) for name, p in zip(SENTIMENTS, row, strict=True)},
                    tokens=max(len(ids) - self._added_tokens, 0),
                    unknown_tokens=ids.count(self._unknown_id),
                )
            )
        return predictions

    def _probabilities(self, cleaned: Sequence[str]) -> np.ndarray:
        if not cleaned:
            return np.zeros((0, len(SENTIMENTS)))
        logits = self.logits([self.text_prefix + text for text in cleaned])
        return served_probabilities(logits, self.model_labels, self.temperature, self.band)


def _stage(cpu: ThreadCpu | None, name: str) -> AbstractContextManager[None]:
    return nullcontext() if cpu is None else cpu.stage(name)


def _load_lexical(directory: Path, card: ModelCard) -> LexicalModel | None:
    """The lexical half a hybrid's card names, its files checked against the card's hashes."""
    if card.lexical is None:
        return None
    from model.paths import file_sha256

    for name in (card.lexical.vocabulary_file, card.lexical.weights_file):
        path = directory / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the card names a lexical half")
        if file_sha256(path) != card.lexical.sha256.get(name):
            raise ValueError(f"{path} does not match the sha256 in the model card")
    return LexicalModel.load(directory, card.lexical.ngrams)
