"""Fitting the lexical half of a hybrid model and choosing its fusion weight, on validation.

The lexical half is the tuned character TF-IDF baseline itself (:func:`training.baselines.
make_vectorizer`: character 1-3-grams, sublinear tf, up to 300k features, and a
LogisticRegression whose C is chosen on validation accuracy). It is stored in the model
directory in the portable form :mod:`model.lexical` serves, and every figure below is computed
through that served form, not through scikit-learn.

The fusion weight is the network's share of the fused log-odds, chosen on a grid from 0 (the
TF-IDF model alone) to 1 (the network alone) by validation accuracy, ties broken by validation
log-loss after temperature scaling: validation alone decides whether fusion helps, and the
grid's ends mean it can only choose fusion if it does.

Retraining validates on corpus and traffic reviews together; there both choices follow
:mod:`training.selection` instead (each source a fixed share of the weight, and a floor on
corpus validation accuracy for the fusion weight).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.card import LexicalCard
from model.lexical import VOCABULARY_FILE, WEIGHTS_FILE, CharNgrams, LexicalModel, fuse
from model.neutral import softmax
from model.paths import file_sha256
from training.baselines import make_vectorizer
from training.calibrate import fit_temperature
from training.selection import SELECTION_RULE, WeightedValidation, choose

C_GRID: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
WEIGHT_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))
MAX_FEATURES = 300_000


@dataclass(frozen=True)
class LexicalRequest:
    """How to fit the lexical half. ``train_weights``: one sample weight per training review
    (retraining weighs rated traffic against the corpus this way); None weighs all alike.
    ``validation``: how validation reviews count in choosing C and the fusion weight (None:
    alike, no floor). ``fitted``: a half already fitted on these reviews (not fitted again)."""

    c_grid: tuple[float, ...] = C_GRID
    weight_grid: tuple[float, ...] = WEIGHT_GRID
    max_features: int = MAX_FEATURES
    train_weights: np.ndarray | None = field(default=None, compare=False)
    validation: WeightedValidation | None = field(default=None, compare=False)
    fitted: LexicalFit | None = field(default=None, compare=False)


@dataclass
class LexicalFit:
    model: LexicalModel
    c: float
    validation_accuracy_by_c: dict[float, float]
    rows: int
    weighted_validation_accuracy_by_c: dict[float, float] | None = None


def fit_lexical(
    train_texts: Sequence[str],
    train_y: np.ndarray,
    val_texts: Sequence[str],
    val_y: np.ndarray,
    request: LexicalRequest,
) -> LexicalFit:
    """Fit the vectoriser once on ``train_texts``, then one LogisticRegression per C; keep the
    C with the best validation accuracy (weighted by ``request.validation`` when given; ties:
    the smaller C, the stronger regularisation)."""
    from sklearn.linear_model import LogisticRegression

    vectorizer = make_vectorizer("chars", max_features=request.max_features)
    x_train = vectorizer.fit_transform(list(train_texts))
    x_val = vectorizer.transform(list(val_texts))
    fitted = {}
    scores = {}
    weighted = {}
    weights = None if request.validation is None else request.validation.sample_weights()
    for c in request.c_grid:
        classifier = LogisticRegression(C=c, max_iter=2000, solver="liblinear", random_state=0)
        classifier.fit(x_train, np.asarray(train_y), sample_weight=request.train_weights)
        fitted[c] = classifier
        right = classifier.predict(x_val) == np.asarray(val_y)
        scores[c] = float(right.mean())
        weighted[c] = scores[c] if weights is None else float(np.average(right, weights=weights))
    best = max(weighted, key=lambda c: (weighted[c], -c))
    vocabulary = [""] * len(vectorizer.vocabulary_)
    for gram, column in vectorizer.vocabulary_.items():
        vocabulary[column] = gram
    low, high = vectorizer.ngram_range
    model = LexicalModel(
        vocabulary,
        vectorizer.idf_,
        fitted[best].coef_[0],
        float(fitted[best].intercept_[0]),
        CharNgrams(min_n=low, max_n=high, lowercase=vectorizer.lowercase),
    )
    return LexicalFit(
        model, best, scores, len(train_texts), weighted if weights is not None else None
    )


def nll_rows(
    log_odds: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """Each review's log-loss after temperature scaling (fitted with ``sample_weight``)."""
    logits = np.stack([-log_odds / 2, log_odds / 2], axis=1)
    probs = softmax(logits, fit_temperature(logits, y, sample_weight))
    return -np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1))


def choose_weight(
    network_logits: np.ndarray,
    lexical_log_odds: np.ndarray,
    y: np.ndarray,
    grid: Sequence[float] = WEIGHT_GRID,
    validation: WeightedValidation | None = None,
) -> tuple[float, dict[float, dict[str, float]]]:
    """The network's share of the fused log-odds with the best validation accuracy (ties:
    the lowest log-loss after temperature scaling). With ``validation``, by its rule instead
    (:data:`training.selection.SELECTION_RULE`). Returns it and every grid point's figures."""
    y = np.asarray(y)
    weights = None if validation is None else validation.sample_weights()
    table = {}
    for weight in grid:
        fused = fuse(network_logits, lexical_log_odds, weight)
        log_odds = (fused[:, 1] - fused[:, 0]).astype(np.float64)
        right = (log_odds > 0) == (y == 1)
        loss = nll_rows(log_odds, y, weights)
        table[float(weight)] = {"accuracy": float(right.mean()), "log_loss": float(loss.mean())}
        if validation is not None:
            table[float(weight)].update(validation.figures(right, loss))
    if validation is None:
        best = max(table, key=lambda w: (table[w]["accuracy"], -table[w]["log_loss"]))
    else:
        best = choose(table, validation.min_corpus_accuracy)
    return best, table


def save_lexical(
    fit: LexicalFit,
    directory: Path,
    *,
    weight: float,
    selection: dict[str, Any],
) -> LexicalCard:
    """Write the lexical half into a model directory; returns its card entry."""
    vocab_path, weights_path = fit.model.save(directory)
    return LexicalCard(
        vocabulary_file=VOCABULARY_FILE,
        weights_file=WEIGHTS_FILE,
        sha256={p.name: file_sha256(p) for p in (vocab_path, weights_path)},
        features=len(fit.model.index),
        ngram_range=(fit.model.ngrams.min_n, fit.model.ngrams.max_n),
        lowercase=fit.model.ngrams.lowercase,
        c=fit.c,
        weight=weight,
        selection=selection,
    )


def add_lexical_half(
    directory: Path,
    train_texts: Sequence[str],
    train_y: np.ndarray,
    val_texts: Sequence[str],
    val_y: np.ndarray,
    network_val_logits: np.ndarray,
    request: LexicalRequest,
) -> tuple[LexicalCard, LexicalModel]:
    """Fit the lexical half (C on validation), store it in ``directory``, reload it as
    serving will, and choose the fusion weight on validation through the served form."""
    fit = request.fitted or fit_lexical(train_texts, train_y, val_texts, val_y, request)
    fit.model.save(directory)
    served = LexicalModel.load(directory, fit.model.ngrams)
    weight, table = choose_weight(
        network_val_logits,
        served.log_odds(val_texts),
        val_y,
        request.weight_grid,
        request.validation,
    )
    selection: dict[str, Any] = {
        "fitted_on_rows": fit.rows,
        "sample_weighted": request.train_weights is not None,
        "validation_accuracy_by_c": fit.validation_accuracy_by_c,
        "validation_by_weight": table,
        "rule": "LogisticRegression's C with the best validation accuracy (ties: the smaller); "
        "the weight (the network's share of the fused log-odds, 0 = TF-IDF alone, 1 = network "
        "alone) with the best validation accuracy (ties: the lower log-loss after temperature "
        "scaling)",
    }
    if request.validation is not None:
        selection["weighted_validation_accuracy_by_c"] = fit.weighted_validation_accuracy_by_c
        selection["validation_weighting"] = {
            "traffic_reviews": int(np.sum(request.validation.traffic)),
            "traffic_weight": request.validation.traffic_weight,
            "min_corpus_accuracy": request.validation.min_corpus_accuracy,
            "rule": "C: the best weighted validation accuracy (ties: the smaller); the weight: "
            + SELECTION_RULE,
        }
    card = save_lexical(fit, directory, weight=weight, selection=selection)
    return card, served
