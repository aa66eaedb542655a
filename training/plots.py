"""PNG figures for the exploration and evaluation reports (matplotlib, headless).

Chinese labels need a CJK font: Debian's ``fonts-noto-cjk`` provides Noto Sans CJK, which is
picked up when present; without it the figures still render (with missing glyphs)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC", "WenQuanYi Zen Hei")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    available = {f.name for f in font_manager.fontManager.ttflist}
    chosen = [name for name in _CJK_FONTS if name in available]
    plt.rcParams["font.sans-serif"] = [*chosen, "DejaVu Sans"]
    plt.rcParams["font.family"] = "sans-serif"
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def label_distribution(counts: Mapping[str, Mapping[str, int]], path: Path) -> Path:
    """Stacked bars: reviews per category and label."""
    plt = _pyplot()
    categories = sorted(counts)
    labels = sorted({label for per in counts.values() for label in per})
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bottom = np.zeros(len(categories))
    colours = {"negative": "#d9534f", "neutral": "#aaaaaa", "positive": "#5cb85c"}
    for label in labels:
        values = np.array([counts[c].get(label, 0) for c in categories])
        ax.bar(categories, values, bottom=bottom, label=label, color=colours.get(label))
        bottom += values
    ax.set_ylabel("reviews")
    ax.set_title("Labels per category")
    ax.legend()
    return _save(fig, path)


def length_distribution(lengths: Mapping[str, Sequence[int]], path: Path) -> Path:
    """Histogram of review length (characters) per label, log-spaced bins."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = np.unique(np.logspace(0, np.log10(max(2, *(max(v) for v in lengths.values()))), 50))
    for label, values in sorted(lengths.items()):
        ax.hist(values, bins=bins, alpha=0.55, label=f"{label} (median {np.median(values):.0f})")
    ax.set_xscale("log")
    ax.set_xlabel("characters after cleaning")
    ax.set_ylabel("reviews")
    ax.set_title("Review length")
    ax.legend()
    return _save(fig, path)


def top_words(words: Mapping[str, Sequence[tuple[str, float]]], path: Path) -> Path:
    """Side-by-side horizontal bars of the most characteristic words per label."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(words), figsize=(5 * len(words), 6))
    axes = np.atleast_1d(axes)
    for ax, (label, items) in zip(axes, sorted(words.items()), strict=True):
        names = [w for w, _ in items][::-1]
        values = [v for _, v in items][::-1]
        ax.barh(names, values, color="#5cb85c" if label == "positive" else "#d9534f")
        ax.set_title(f"{label}: top words (log-odds)")
    return _save(fig, path)


def confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str):
    plt = _pyplot()
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix):
        colour = "white" if value > matrix.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", color=colour)
    ax.set_title(title)
    return _save(fig, path)


def learning_curves(curves: Mapping[str, Mapping[str, Sequence[float]]], path: Path) -> Path:
    """Loss and validation accuracy by epoch for each trained model."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, curve in curves.items():
        epochs = curve.get("epochs") or list(range(1, len(curve.get("train_loss", [])) + 1))
        if curve.get("train_loss"):
            left.plot(epochs, curve["train_loss"], marker="o", label=f"{name} train")
        if curve.get("val_loss"):
            left.plot(epochs, curve["val_loss"], marker="s", ls="--", label=f"{name} val")
        if curve.get("val_accuracy"):
            right.plot(epochs, curve["val_accuracy"], marker="o", label=name)
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend(fontsize=7)
    right.set_xlabel("epoch")
    right.set_ylabel("validation accuracy")
    right.legend(fontsize=7)
    fig.suptitle("Learning curves")
    return _save(fig, path)


def model_comparison(scores: Mapping[str, Mapping[str, float]], path: Path) -> Path:
    """Grouped bars of test accuracy and macro-F1 per model."""
    plt = _pyplot()
    names = list(scores)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(names)), 4.5))
    for offset, metric in ((-0.2, "accuracy"), (0.2, "macro_f1")):
        values = [scores[n][metric] for n in names]
        bars = ax.bar(x + offset, values, width=0.4, label=metric)
        for bar, value in zip(bars, values, strict=True):
            if not np.isfinite(value):
                continue
            ax.text(
                bar.get_x() + bar.get_width() / 2,
                value,
                f"{value:.3f}",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    low = float(np.nanmin([[s["accuracy"], s["macro_f1"]] for s in scores.values()]))
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_title("Test accuracy and macro-F1")
    ax.legend()
    return _save(fig, path)


def per_category(scores: Mapping[str, Mapping[str, float]], path: Path) -> Path:
    """Test accuracy per category, one bar group per model."""
    plt = _pyplot()
    models = list(scores)
    categories = sorted({c for per in scores.values() for c in per})
    x = np.arange(len(categories))
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for index, name in enumerate(models):
        ax.bar(
            x + index * width - 0.4 + width / 2,
            [scores[name].get(c, 0.0) for c in categories],
            width=width,
            label=name,
        )
    ax.set_xticks(x, categories)
    ax.set_ylim(0.7, 1.0)
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    ax.set_title("Accuracy per category")
    return _save(fig, path)


def reliability(confidence: np.ndarray, correct: np.ndarray, path: Path, title: str) -> Path:
    """Reliability diagram: accuracy against confidence in 10 bins."""
    plt = _pyplot()
    edges = np.linspace(0.5, 1.0, 11)
    centres, accuracy = [], []
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            centres.append(confidence[inside].mean())
            accuracy.append(correct[inside].mean())
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0.5, 1], [0.5, 1], ls="--", color="grey")
    ax.plot(centres, accuracy, marker="o")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    return _save(fig, path)
