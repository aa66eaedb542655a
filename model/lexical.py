"""The lexical half of a hybrid model: character n-gram TF-IDF and a linear classifier.

A hybrid model directory holds, next to the network, a TF-IDF + logistic-regression model over
character n-grams (what ``sklearn``'s ``TfidfVectorizer(analyzer="char", sublinear_tf=True)``
and ``LogisticRegression`` compute; training fits them, :mod:`training.lexical`), stored without
pickle: :data:`VOCABULARY_FILE`, the n-grams as a JSON list in column order, and
:data:`WEIGHTS_FILE`, safetensors with ``idf``, ``coef`` and ``intercept`` (float32). Serving
needs neither scikit-learn nor jieba: :meth:`LexicalModel.log_odds` is plain Python and numpy
(a few microseconds a review), checked against scikit-learn by the tests.

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

    def ngrams(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        text = _WHITE_SPACES.sub(" ", text)
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
        out = np.full(len(texts), self.intercept)
        if not rows:
            return out
        row_ids = np.asarray(rows)
        cols = np.asarray(columns)
        weight = (1.0 + np.log(np.asarray(counts, dtype=np.float64))) * self.idf[cols]
        norms = np.sqrt(np.bincount(row_ids, weight * weight, minlength=len(texts)))
        dots = np.bincount(row_ids, weight * self.coef[cols], minlength=len(texts))
        np.divide(dots, norms, out=dots, where=norms > 0)
        return out + dots


def fuse(network_logits: np.ndarray, lexical_log_odds: np.ndarray, weight: float) -> np.ndarray:
    """Two-class (negative, positive) logits of the hybrid: ``weight`` of the network's,
    ``1 - weight`` of the lexical model's log-odds split evenly around zero."""
    network = np.asarray(network_logits, dtype=np.float64)
    if network.ndim != 2 or network.shape[1] != 2:
        raise ValueError("fusion needs a two-class (negative, positive) network")
    half = (1.0 - weight) * np.asarray(lexical_log_odds, dtype=np.float64) / 2
    return (weight * network + np.stack([-half, half], axis=1)).astype(np.float32)
