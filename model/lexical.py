"""The lexical half of a hybrid model: character n-gram TF-IDF and a linear classifier.

A hybrid model directory holds, next to the network, a TF-IDF + logistic-regression model over
character n-grams (what ``sklearn``'s ``TfidfVectorizer(analyzer="char", sublinear_tf=True)``
and ``LogisticRegression`` compute; training fits them, :mod:`training.lexical`), stored without
pickle: :data:`VOCABULARY_FILE`, the n-grams as a JSON list in column order, and
:data:`WEIGHTS_FILE`, safetensors with ``idf``, ``coef`` and ``intercept`` (float32). Serving
needs neither scikit-learn nor jieba: :meth:`LexicalModel.log_odds` is numpy over whole batches
(n-grams of up to three characters packed into one int64 each, looked up in the sorted packed
vocabulary), checked against scikit-learn and against the per-text reference by the tests.

The predictor fuses it with the network before calibration (:func:`fuse`): the fused
two-class logits are ``w * network + (1 - w) * (-d/2, d/2)`` with ``d`` the lexical log-odds,
so the fused log-odds are ``w * network log-odds + (1 - w) * d``; temperature and neutral band
are fitted on the fused logits.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOCABULARY_FILE = "lexical.vocab.json"
WEIGHTS_FILE = "lexical.safetensors"
_WHITE_SPACES = re.compile(r"\s\s+")  # sklearn's character analyzer squeezes these to " "


@dataclass(frozen=True)
class CharNgrams:
    """How texts become n-grams: sklearn's ``analyzer="char"`` with these settings."""

    min_n: int = 1
    max_n: int = 3
    lowercase: bool = True

    def prepare(self, text: str) -> str:
        """The text the n-grams are cut from: lowercased if asked, runs of spaces squeezed."""
        if self.lowercase:
            text = text.lower()
        return _WHITE_SPACES.sub(" ", text)

    def ngrams(self, text: str) -> list[str]:
        text = self.prepare(text)
        grams = list(text) if self.min_n == 1 else []
        for n in range(max(self.min_n, 2), self.max_n + 1):
            grams.extend(text[i : i + n] for i in range(len(text) - n + 1))
        return grams


class LexicalModel:
    """TF-IDF (sublinear tf, l2 norm) over a fixed vocabulary, then a linear decision."""

    def __init__(
        self,
        vocabulary: Sequence[str],
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: float,
        ngrams: CharNgrams,
    ) -> None:
        if not len(vocabulary) == len(idf) == len(coef):
            raise ValueError("vocabulary, idf and coef must have one entry per n-gram")
        self.index = {gram: i for i, gram in enumerate(vocabulary)}
        if len(self.index) != len(vocabulary):
            raise ValueError("the vocabulary has duplicate n-grams")
        self.idf = np.asarray(idf, dtype=np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = float(intercept)
        self.ngrams = ngrams
        self._packed = _PackedVocabulary.of(vocabulary) if ngrams.max_n <= _PACKED_MAX_N else None

    @classmethod
    def load(cls, directory: Path, ngrams: CharNgrams) -> LexicalModel:
        """The lexical half stored in a model directory (see :meth:`save`)."""
        from safetensors.numpy import load_file

        directory = Path(directory)
        vocabulary = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
        if not isinstance(vocabulary, list) or not all(isinstance(g, str) for g in vocabulary):
            raise ValueError(f"{directory / VOCABULARY_FILE} is not a JSON list of n-grams")
        weights = load_file(str(directory / WEIGHTS_FILE))
        return cls(
            vocabulary, weights["idf"], weights["coef"], float(weights["intercept"][0]), ngrams
        )

    def save(self, directory: Path) -> tuple[Path, Path]:
        """Write :data:`VOCABULARY_FILE` and :data:`WEIGHTS_FILE` into ``directory``."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        vocabulary = [""] * len(self.index)
        for gram, column in self.index.items():
            vocabulary[column] = gram
        vocab_path = directory / VOCABULARY_FILE
        vocab_path.write_text(
            json.dumps(vocabulary, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
        )
        weights_path = directory / WEIGHTS_FILE
        save_file(
            {
                "idf": self.idf.astype(np.float32),
                "coef": self.coef.astype(np.float32),
                "intercept": np.array([self.intercept], dtype=np.float32),
            },
            str(weights_path),
        )
        return vocab_path, weights_path

    def log_odds(self, texts: Sequence[str]) -> np.ndarray:
        """The linear decision (log-odds of the positive class) of each text."""
        if self._packed is None:
            return self.reference_log_odds(texts)
        rows, columns, counts = self._packed.counts(texts, self.ngrams)
        return self._decision(len(texts), rows, columns, counts)

    def reference_log_odds(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`log_odds` one text and one n-gram at a time, in Python: the definition the
        batch path is tested against, and the path for n-grams longer than it packs."""
        rows: list[int] = []
        columns: list[int] = []
        counts: list[int] = []
        index = self.index
        for row, text in enumerate(texts):
            for gram, count in Counter(self.ngrams.ngrams(text)).items():
                column = index.get(gram)
                if column is not None:
                    rows.append(row)
                    columns.append(column)
                    counts.append(count)
        return self._decision(
            len(texts),
            np.asarray(rows, dtype=np.int64),
            np.asarray(columns, dtype=np.int64),
            np.asarray(counts, dtype=np.float64),
        )

    def _decision(
        self, size: int, rows: np.ndarray, columns: np.ndarray, counts: np.ndarray
    ) -> np.ndarray:
        """Sublinear tf times idf, l2-normalised per row, dotted with the coefficients."""
        out = np.full(size, self.intercept)
        if not len(rows):
            return out
        weight = (1.0 + np.log(counts)) * self.idf[columns]
        norms = np.sqrt(np.bincount(rows, weight * weight, minlength=size))
        dots = np.bincount(rows, weight * self.coef[columns], minlength=size)
        np.divide(dots, norms, out=dots, where=norms > 0)
        return out + dots


_CODE_BITS = 21  # a code point plus one fits (0x10FFFF + 1 < 2**21): never zero
_PACKED_MAX_N = 3  # three of them fit in an int64's 63 value bits


@dataclass(frozen=True)
class _PackedVocabulary:
    """The vocabulary as sorted int64 keys (each n-gram's code points plus one, 21 bits
    each, so n-grams of different lengths never share a key) and their columns."""

    keys: np.ndarray
    columns: np.ndarray

    @classmethod
    def of(cls, vocabulary: Sequence[str]) -> _PackedVocabulary | None:
        if any(len(gram) > _PACKED_MAX_N for gram in vocabulary):
            return None
        keys = np.zeros(len(vocabulary), dtype=np.int64)
        for column, gram in enumerate(vocabulary):
            key = 0
            for char in gram:
                key = (key << _CODE_BITS) | (ord(char) + 1)
            keys[column] = key
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], order.astype(np.int64))

    def counts(
        self, texts: Sequence[str], ngrams: CharNgrams
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, column, count) of every in-vocabulary n-gram of ``texts``, all n at once:
        every window of n code points that stays inside its text, packed, looked up."""
        prepared = [ngrams.prepare(text) for text in texts]
        lengths = np.fromiter(map(len, prepared), dtype=np.int64, count=len(prepared))
        codes = np.frombuffer(
            "".join(prepared).encode("utf-32-le", "surrogatepass"), dtype=np.uint32
        ).astype(np.int64)
        codes += 1
        total = len(codes)
        row_of = np.repeat(np.arange(len(prepared), dtype=np.int64), lengths)
        end_of = np.repeat(np.cumsum(lengths), lengths)  # where each character's text ends
        rows, keys = [], []
        for n in range(ngrams.min_n, ngrams.max_n + 1):
            windows = total - n + 1
            if windows <= 0:
                continue
            inside = np.arange(n, windows + n, dtype=np.int64) <= end_of[:windows]
            key = codes[:windows].copy()
            for offset in range(1, n):
                key <<= _CODE_BITS
                key |= codes[offset : offset + windows]
            rows.append(row_of[:windows][inside])
            keys.append(key[inside])
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty.astype(np.float64)
        row, key = np.concatenate(rows), np.concatenate(keys)
        # Looked up once per distinct n-gram, in sorted order: a cache-friendly search.
        distinct, which = np.unique(key, return_inverse=True)
        at = np.searchsorted(self.keys, distinct)
        np.minimum(at, len(self.keys) - 1, out=at)
        column = np.where(self.keys[at] == distinct, self.columns[at], -1)[which]
        known = column >= 0
        width = len(self.keys)
        pairs, counts = np.unique(row[known] * width + column[known], return_counts=True)
        return pairs // width, pairs % width, counts.astype(np.float64)


def fuse(network_logits: np.ndarray, lexical_log_odds: np.ndarray, weight: float) -> np.ndarray:
    """Two-class (negative, positive) logits of the hybrid: ``weight`` of the network's,
    ``1 - weight`` of the lexical model's log-odds split evenly around zero."""
    network = np.asarray(network_logits, dtype=np.float64)
    if network.ndim != 2 or network.shape[1] != 2:
        raise ValueError("fusion needs a two-class (negative, positive) network")
    half = (1.0 - weight) * np.asarray(lexical_log_odds, dtype=np.float64) / 2
    return (weight * network + np.stack([-half, half], axis=1)).astype(np.float32)
