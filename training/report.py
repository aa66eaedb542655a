"""Evaluation report: the served model against the scikit-learn baselines on one split.

Writes ``figures.json`` (every number), PNGs (confusion matrix, learning curves, model
comparison, accuracy per category, reliability) and ``report.md`` into one directory."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from model.jsonio import write_json
from model.neutral import softmax
from model.paths import portable_path
from model.predictor import DEFAULT_TOKEN_BUDGET, SentimentModel
from training import plots
from training.baselines import fit_baseline, tune_lr_c
from training.bench import throughput
from training.calibrate import expected_calibration_error
from training.evaluate import classification_figures, served_label_share
from training.pipeline import PreparedData, label_ids

DEFAULT_BASELINES = ("chars-lr", "words-lr", "chars-rf", "words-rf")


def evaluate_baselines(
    data: PreparedData, kinds: Sequence[str] = DEFAULT_BASELINES, *, progress: bool = True
) -> dict[str, dict]:
    """Fit each baseline on train; figures on test (and validation accuracy). LogisticRegression
    baselines have their C tuned on validation accuracy first (recorded as ``c``)."""
    labels = data.labels
    split = data.split
    y_train = label_ids(split.train, labels)
    y_val = label_ids(split.validation, labels)
    y_test = label_ids(split.test, labels)
    results: dict[str, dict] = {}
    for kind in tqdm(kinds, desc="baselines", disable=not progress):
        features, classifier = kind.split("-")
        train_texts = [r.text for r in split.train]
        tuned: dict[str, Any] = {}
        if classifier == "lr":
            c, by_c = tune_lr_c(
                train_texts, y_train, [r.text for r in split.validation], y_val, features=features
            )
            tuned = {"c": c, "validation_accuracy_by_c": by_c}
        baseline = fit_baseline(
            train_texts, y_train, features=features, classifier=classifier, c=tuned.get("c", 4.0)
        )
        val = baseline.predict_proba([r.text for r in split.validation])
        test = baseline.predict_proba([r.text for r in split.test])
        figures = classification_figures(test, y_test, [r.category for r in split.test], labels)
        figures["validation_accuracy"] = float((val.argmax(1) == y_val).mean())
        figures["fit_seconds"] = baseline.fit_seconds
        figures.update(tuned)
        results[baseline.name + (f" (C={tuned['c']:g}, tuned)" if tuned else "")] = figures
    return results


def evaluate_served_model(model: SentimentModel, data: PreparedData) -> dict:
    """Two-class figures of the served model (temperature-scaled) plus its 3-way shares."""
    labels = data.labels
    split = data.split
    out: dict[str, Any] = {"version": model.version}
    for name, part in (("validation", split.validation), ("test", split.test)):
        texts = [model.text_prefix + r.text for r in part]
        logits = model.logits(texts)
        if tuple(model.model_labels) != tuple(labels):
            raise ValueError(f"model labels {model.model_labels} differ from the data's {labels}")
        probs = softmax(logits, model.temperature)
        y = label_ids(part, labels)
        figures = classification_figures(probs, y, [r.category for r in part], labels)
        figures["ece_uncalibrated"] = expected_calibration_error(softmax(logits), y)
        figures["served_label_share"] = served_label_share(
            model.probabilities([r.text for r in part])
        )
        lexical = model.lexical_log_odds(texts)
        if lexical is not None:  # a hybrid: each half alone, for the comparison
            network = model.network_logits(texts)
            figures["accuracy_of_parts"] = {
                "network": float((network.argmax(1) == y).mean()),
                "lexical": float(((lexical > 0) == (y == 1)).mean()),
            }
        out[name] = figures
        out[f"_{name}_probs"] = probs
        out[f"_{name}_labels"] = y
    return out


def card_is_hybrid(model: SentimentModel) -> bool:
    return model.card.lexical is not None


def write_report(
    data: PreparedData,
    model_dir: Path,
    out_dir: Path,
    *,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    distil_report: dict | None = None,
    baseline_figures: dict | None = None,
    throughput_texts: int = 2048,
    threads: int = 2,
    runtime: str = "auto",
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    progress: bool = True,
) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    model = SentimentModel.load(
        model_dir, threads=threads, runtime=runtime, token_budget=token_budget
    )
    served = evaluate_served_model(model, data)
    if baseline_figures is not None:  # reused from an earlier report on the same split
        base = baseline_figures
    else:
        base = evaluate_baselines(data, baselines, progress=progress)
    name = f"{'hybrid' if card_is_hybrid(model) else 'bert'} {model.version}"
    test_texts = [r.text for r in data.split.test][:throughput_texts]
    speed = throughput({name: model}, test_texts, batch_size=64, rounds=2)[name]
    comparison = {
        n: {"accuracy": f["accuracy"], "macro_f1": f["macro_f1"]} for n, f in base.items()
    }
    comparison[name] = {
        "accuracy": served["test"]["accuracy"],
        "macro_f1": served["test"]["macro_f1"],
    }
    for part, accuracy in served["test"].get("accuracy_of_parts", {}).items():
        label = "its network alone" if part == "network" else "its TF-IDF half alone"
        comparison[f"{name}: {label}"] = {"accuracy": accuracy, "macro_f1": float("nan")}
    teacher: dict[str, Any] = {}
    if distil_report:
        for key in ("teacher_test_accuracy", "ensemble_test_accuracy", "tfidf_test_accuracy"):
            if key in distil_report:
                teacher[key] = distil_report[key]
        for key, label in (
            ("teacher_test_accuracy", "e5 teacher"),
            ("ensemble_test_accuracy", "e5+tfidf teacher"),
        ):
            if key in distil_report:
                comparison[label] = {"accuracy": distil_report[key], "macro_f1": float("nan")}
    card = model.card
    curves = {"served model": card.learning_curves}
    if distil_report and distil_report.get("teacher_history"):
        curves["e5 teacher"] = distil_report["teacher_history"]
    for index, student in enumerate((distil_report or {}).get("students", [])):
        spec = student["spec"]
        label = f"student {index} {student.get('tokenizer', 'char')} {spec['hidden_size']}x"
        curves[label + str(spec["num_layers"])] = student["history"]
    cm = served["test"]["confusion_matrix"]
    plots.confusion(
        cm["rows_true_cols_predicted"],
        cm["labels"],
        out_dir / "confusion_matrix.png",
        f"{model.version} (test)",
    )
    plots.learning_curves(curves, out_dir / "learning_curves.png")
    # Teachers have no macro-F1 on record: NaN draws no bar (0 would read as a score).
    plots.model_comparison(comparison, out_dir / "model_comparison.png")
    per_cat = {name: {c: v["accuracy"] for c, v in served["test"]["per_category"].items()}}
    for base_name, figures in base.items():
        per_cat[base_name] = {c: v["accuracy"] for c, v in figures["per_category"].items()}
    plots.per_category(per_cat, out_dir / "per_category.png")
    probs, y = served["_test_probs"], served["_test_labels"]
    plots.reliability(
        probs.max(1),
        probs.argmax(1) == y,
        out_dir / "reliability.png",
        f"calibration (ECE {served['test']['ece']:.3f})",
    )
    figures = {
        "data": data.describe().to_dict(),
        "model": {
            "directory": portable_path(model_dir),
            "version": model.version,
            "runtime": model.runtime,
            "runtimes": card.runtimes,
            "parameters": card.training.get("parameters"),
            "size_bytes": sum(p.stat().st_size for p in Path(model_dir).iterdir() if p.is_file()),
            "temperature": model.temperature,
            "neutral_band": card.neutral_band.to_dict() if card.neutral_band else None,
            "lexical": (
                {k: v for k, v in _plain_lexical(card).items() if k != "selection"}
                if card.lexical
                else None
            ),
            "validation": served["validation"],
            "test": served["test"],
            "throughput_reviews_per_s": speed,
            "throughput_setup": {
                "threads": threads,
                "token_budget": token_budget,
                "batch_size": 64,
                "texts": len(test_texts),
                "machine": platform.processor() or platform.machine(),
            },
        },
        "baselines": base,
        "teacher": teacher,
        "comparison": comparison,
    }
    write_json(out_dir / "figures.json", figures)
    _markdown(figures, out_dir / "report.md")
    return figures


def _plain_lexical(card: Any) -> dict[str, Any]:
    return card.to_dict()["lexical"]


def _markdown(figures: dict, path: Path) -> None:
    model = figures["model"]
    split = figures["data"]["split"]
    lines = [
        "# Evaluation report",
        "",
        f"Split `{split['sha256'][:16]}`: {json.dumps(split['sizes'])}.",
        "",
        "| model | test accuracy | test macro-F1 |",
        "|---|---|---|",
    ]
    for name, scores in figures["comparison"].items():
        f1 = scores["macro_f1"]
        f1_text = "" if f1 is None or (isinstance(f1, float) and np.isnan(f1)) else f"{f1:.4f}"
        lines.append(f"| {name} | {scores['accuracy']:.4f} | {f1_text} |")
    speed = model["throughput_reviews_per_s"]
    lines += [
        "",
        f"Served model `{model['version']}`: ECE {model['test']['ece']:.4f} after temperature "
        f"{model['temperature']:.3f} (before: {model['test']['ece_uncalibrated']:.4f}); "
        f"neutral band {json.dumps(model['neutral_band'])}.",
        "",
    ]
    lexical = model.get("lexical")
    if lexical:
        low, high = lexical["ngram_range"]
        lines += [
            f"A hybrid: the network's logits fused with a char {low}-{high}-gram TF-IDF + "
            f"LogisticRegression half ({lexical['features']:,} n-grams, C={lexical['c']:g}) "
            f"before calibration, the network weighing {lexical['weight']:g} of the fused "
            "log-odds (C and weight chosen on validation).",
            "",
        ]
    lines += [
        f"Forward throughput ({model['runtime']} runtime, "
        f"{model['throughput_setup']['threads']} threads, batch 64): "
        + ", ".join(f"{k} {v:,.0f} reviews/s" for k, v in speed.items()),
        "",
        "![comparison](model_comparison.png)",
        "![confusion](confusion_matrix.png)",
        "![curves](learning_curves.png)",
        "![categories](per_category.png)",
        "![reliability](reliability.png)",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
