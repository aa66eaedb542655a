"""Figures for a classifier on a labelled split: accuracy, macro-F1, per category, confusion
matrix and calibration. Pure functions over arrays; plotting lives in :mod:`training.plots`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from model.labels import SENTIMENTS
from training.calibrate import expected_calibration_error


def classification_figures(
    probs: np.ndarray,
    labels: Sequence[int],
    categories: Sequence[str],
    label_names: Sequence[str],
) -> dict:
    """Accuracy and macro-F1 overall and per category, confusion matrix, ECE."""
    labels = np.asarray(labels)
    predicted = probs.argmax(axis=1)
    ids = list(range(len(label_names)))
    figures: dict = {
        "n": len(labels),
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(
            f1_score(labels, predicted, average="macro", labels=ids, zero_division=0)
        ),
        "ece": expected_calibration_error(probs, labels),
        "confusion_matrix": {
            "labels": list(label_names),
            "rows_true_cols_predicted": confusion_matrix(labels, predicted, labels=ids).tolist(),
        },
        "per_category": {},
    }
    cats = np.asarray(categories)
    for category in sorted(set(categories)):
        inside = cats == category
        figures["per_category"][category] = {
            "n": int(inside.sum()),
            "accuracy": float(accuracy_score(labels[inside], predicted[inside])),
            "macro_f1": float(
                f1_score(
                    labels[inside], predicted[inside], average="macro", labels=ids, zero_division=0
                )
            ),
        }
    return figures


def served_label_share(served: np.ndarray) -> dict[str, float]:
    """Share of reviews served as each label, from (negative, neutral, positive) rows."""
    return {name: float((served.argmax(1) == i).mean()) for i, name in enumerate(SENTIMENTS)}
