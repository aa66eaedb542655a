"""scikit-learn baselines: TF-IDF with LogisticRegression or RandomForest, on jieba words or
on characters. They set the bar the BERT models must clear on the same split."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Features = Literal["words", "chars"]
Classifier = Literal["lr", "rf"]


def jieba_words(text: str) -> list[str]:
    import jieba

    return [w for w in jieba.lcut(text) if w.strip()]


def make_vectorizer(features: Features, *, max_features: int = 300_000) -> Any:
    """TF-IDF over character 1-3-grams or jieba word 1-2-grams (sublinear tf, the most frequent
    ``max_features`` terms seen at least twice)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if features == "chars":
        return TfidfVectorizer(
            analyzer="char",
            ngram_range=(1, 3),
            min_df=2,
            sublinear_tf=True,
            max_features=max_features,
        )
    return TfidfVectorizer(
        tokenizer=jieba_words,
        token_pattern=None,
        lowercase=True,
        ngram_range=(1, 2),
        min_df=2,
        sublinear_tf=True,
        max_features=max_features,
    )


def make_classifier(kind: Classifier, *, seed: int = 13, c: float = 4.0) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if kind == "lr":
        return LogisticRegression(C=c, max_iter=2000, solver="liblinear", random_state=0)
    return RandomForestClassifier(
        n_estimators=150, min_samples_leaf=2, max_features="sqrt", n_jobs=-1, random_state=seed
    )


@dataclass
class Baseline:
    name: str
    pipeline: Any
    fit_seconds: float

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.pipeline.predict_proba(list(texts))


def fit_baseline(
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    features: Features,
    classifier: Classifier,
    seed: int = 13,
    c: float = 4.0,
) -> Baseline:
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(make_vectorizer(features), make_classifier(classifier, seed=seed, c=c))
    started = time.perf_counter()
    pipeline.fit(list(texts), np.asarray(labels))
    return Baseline(f"tfidf-{features}-{classifier}", pipeline, time.perf_counter() - started)


def tune_lr_c(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    val_texts: Sequence[str],
    val_labels: Sequence[int],
    *,
    features: Features = "chars",
    grid: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
) -> tuple[float, dict[float, float]]:
    """LogisticRegression's C chosen on validation accuracy (vectoriser fitted once; ties:
    the smaller C)."""
    from sklearn.linear_model import LogisticRegression

    vectorizer = make_vectorizer(features)
    x_train = vectorizer.fit_transform(list(train_texts))
    x_val = vectorizer.transform(list(val_texts))
    scores = {}
    for c in grid:
        model = LogisticRegression(C=c, max_iter=2000, solver="liblinear", random_state=0)
        model.fit(x_train, np.asarray(train_labels))
        scores[c] = float((model.predict(x_val) == np.asarray(val_labels)).mean())
    return max(scores, key=lambda c: (scores[c], -c)), scores
