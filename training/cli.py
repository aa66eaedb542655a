"""``reviewpulse`` subcommands of the training area.

train, distil, import-student, repackage, retrain, explore, evaluate, tune, bench-model. Each
command takes the flags of the settings sections it reads: :class:`ModelConfig` when it trains,
loads or publishes a model, :class:`TrainingConfig` when it reads reviews or writes reports,
and :class:`ClickHouseConfig` along with ``--from-clickhouse`` (and ``retrain``). Heavy imports
stay inside the command functions so ``reviewpulse --help`` stays fast."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stream.config import ClickHouseConfig, ModelConfig, add_config_arguments, resolve
from training.config import TrainingConfig
from training.gate import EXIT_NOT_PROMOTED, GateRules

if TYPE_CHECKING:
    from training.lexical import LexicalRequest
    from training.pipeline import PreparedData
    from training.train import TrainResult


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The data flags; a command with them also adds the TrainingConfig and ClickHouseConfig
    sections they read."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data",
        type=Path,
        action="append",
        help="CSV/JSONL/zip of reviews with text and a 0/1 label or a 1-5 rating "
        "(repeatable) [default: --training-corpus]",
    )
    group.add_argument(
        "--from-clickhouse",
        action="store_true",
        help="also use rated reviews stored in ClickHouse (the clickhouse-* settings)",
    )
    group.add_argument("--sample", type=int, help="use a stratified sample of N reviews")


def _prepare(args: argparse.Namespace, training: TrainingConfig) -> PreparedData:
    from training.data import load_clickhouse
    from training.pipeline import prepare_data

    extra = load_clickhouse(resolve(ClickHouseConfig, args)) if args.from_clickhouse else []
    data = prepare_data(args.data or [training.training_corpus], extra=extra, sample=args.sample)
    print(f"data: {data.split.summary()['sizes']} split sha256 {data.split.sha256[:16]}")
    return data


def _model_and_data(
    args: argparse.Namespace, training: TrainingConfig
) -> tuple[ModelConfig, PreparedData]:
    """The model section, torch's thread count from it, and the prepared data: the preamble
    of every command that trains or evaluates."""
    import torch

    model = resolve(ModelConfig, args)
    torch.set_num_threads(model.model_threads)
    return model, _prepare(args, training)


def _add_lexical_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hybrid")
    group.add_argument(
        "--no-lexical",
        action="store_true",
        help="package the network alone, without the char TF-IDF half (by default a hybrid: "
        "a char 1-3-gram TF-IDF + LogisticRegression fused with the network's logits, C and "
        "fusion weight chosen on validation)",
    )
    group.add_argument(
        "--lexical-c-grid",
        default="1,2,4,8,16,32",
        help="LogisticRegression C values tried on validation for the TF-IDF half",
    )


def _lexical(args: argparse.Namespace) -> LexicalRequest | None:
    from training.lexical import LexicalRequest

    if args.no_lexical:
        return None
    return LexicalRequest(c_grid=tuple(float(c) for c in args.lexical_c_grid.split(",") if c))


def _model_dir(model: ModelConfig, version: str | None) -> Path:
    """A model directory given as such, or a registry version (default: the configured)."""
    from model.registry import resolve_model_dir

    if version and Path(version).is_dir():
        return Path(version)
    return resolve_model_dir(model.model_registry, model.model_name, version or model.model_version)


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_train(subparsers)
    _register_distil(subparsers)
    _register_repackage(subparsers)
    _register_retrain(subparsers)
    _register_reports(subparsers)
    _register_bench(subparsers)


# --- train ------------------------------------------------------------------------------------


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a sentiment BERT and publish it to the model registry",
        description="Load and clean the reviews, split them, train a BERT (from scratch over "
        "a corpus vocabulary, or fine-tuning a local Hugging Face checkpoint), calibrate on "
        "validation, evaluate once on test, and publish a versioned model directory.",
    )
    _add_data_arguments(train)
    model = train.add_argument_group("model")
    model.add_argument("--init-checkpoint", type=Path, help="fine-tune this local HF model dir")
    model.add_argument(
        "--tokenizer",
        choices=("wordpiece", "char"),
        default="wordpiece",
        help="corpus vocabulary for a from-scratch model: frequent words or single characters",
    )
    model.add_argument("--vocab-size", type=int, default=20000, help="wordpiece vocabulary")
    model.add_argument("--hidden-size", type=int, default=128)
    model.add_argument("--layers", type=int, default=2)
    model.add_argument("--heads", type=int, default=2)
    model.add_argument("--intermediate-size", type=int, default=512)
    model.add_argument("--dropout", type=float, default=0.1)
    fitting = train.add_argument_group("training")
    fitting.add_argument("--epochs", type=float, default=3.0)
    fitting.add_argument("--mlm-epochs", type=float, default=0.0, help="MLM warm-up epochs")
    fitting.add_argument("--train-batch-size", type=int, default=64)
    fitting.add_argument("--learning-rate", type=float, default=1e-3)
    fitting.add_argument("--max-length", type=int, default=128)
    fitting.add_argument("--seed", type=int, default=13)
    fitting.add_argument("--time-budget-s", type=float, help="stop (annealed) after this long")
    fitting.add_argument("--device", default="auto", help="auto, cpu or cuda")
    _add_lexical_arguments(train)
    out = _add_output_arguments(train, tag="bert", gate=True)
    out.add_argument("--no-progress", action="store_true")
    add_config_arguments(train, ModelConfig, TrainingConfig, ClickHouseConfig)
    train.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from training.bert import BertSpec, TrainOptions
    from training.train import TrainRequest, train_and_package

    model, data = _model_and_data(args, resolve(TrainingConfig, args))
    request = TrainRequest(
        spec=BertSpec(
            hidden_size=args.hidden_size,
            num_layers=args.layers,
            num_heads=args.heads,
            intermediate_size=args.intermediate_size,
            dropout=args.dropout,
        ),
        options=TrainOptions(
            epochs=args.epochs,
            batch_size=args.train_batch_size,
            learning_rate=args.learning_rate,
            max_length=args.max_length,
            seed=args.seed,
            time_budget_s=args.time_budget_s,
            device=args.device,
        ),
        init_checkpoint=args.init_checkpoint,
        mlm_epochs=args.mlm_epochs,
        tokenizer=args.tokenizer,
        vocab_size=args.vocab_size,
        tag=args.tag,
        lexical=_lexical(args),
    )
    return _build_and_publish(
        args,
        model,
        lambda out: train_and_package(data, request, out, progress=not args.no_progress),
        data,
    )


def _add_output_arguments(
    parser: argparse.ArgumentParser, *, tag: str, gate: bool
) -> argparse._ArgumentGroup:
    out = parser.add_argument_group("output")
    out.add_argument("--tag", default=tag, help="suffix of the version name")
    out.add_argument("--out", type=Path, help="also keep the model directory here")
    out.add_argument("--no-current", action="store_true", help="publish without moving CURRENT")
    if gate:
        out.add_argument(
            "--gate",
            action="store_true",
            help="move CURRENT only if the new model beats the served one on this test split "
            f"(exit {EXIT_NOT_PROMOTED} when it does not; it is published either way)",
        )
        out.add_argument(
            "--gate-min-gain", type=float, default=0.0, help="test accuracy gain the gate needs"
        )
        out.add_argument(
            "--gate-max-ece",
            type=float,
            default=GateRules.max_ece,
            help="largest calibration error (ECE) the gate accepts; noisy on small test splits",
        )
    return out


def _build_and_publish(
    args: argparse.Namespace,
    model: ModelConfig,
    build: Callable[[Path], TrainResult],
    data: PreparedData | None = None,
) -> int:
    """Build a model directory (in ``--out`` or a scratch dir), publish it to the registry
    (moving CURRENT unless ``--no-current``, or unless ``--gate`` rejects it), and print what
    was published."""
    from training.gate import gate_candidate
    from training.train import publish_result, summary_line

    promote = not args.no_current
    gated = getattr(args, "gate", False) and promote
    with tempfile.TemporaryDirectory() as tmp:
        result = build(args.out or Path(tmp) / "model")
        if gated:
            decision = gate_candidate(
                result.card,
                data,
                model.model_registry,
                model.model_name,
                rules=GateRules(min_accuracy_gain=args.gate_min_gain, max_ece=args.gate_max_ece),
                threads=model.model_threads,
                runtime=model.model_runtime,
            )
            print("gate: " + json.dumps(decision.to_dict()))
            promote = decision.promote
        target = publish_result(
            result, model.model_registry, model.model_name, make_current=promote
        )
    print(summary_line(result))
    print(f"published {target}" + (" as CURRENT" if promote else " (CURRENT unchanged)"))
    return EXIT_NOT_PROMOTED if gated and not promote else 0


# --- distillation -------------------------------------------------------------------------------


def _register_distil(subparsers: argparse._SubParsersAction) -> None:
    distil = subparsers.add_parser(
        "distil",
        help="fine-tune the e5 teacher and distil it into small students (best on a GPU)",
        description="Same as `python -m training.distil` (which runs without the service "
        "dependencies, e.g. on a bare GPU machine). Pass its options after `--`.",
    )
    distil.add_argument("rest", nargs=argparse.REMAINDER, help="options of training.distil")
    distil.set_defaults(func=lambda args: __import__("training.distil").distil.main(args.rest))

    student = subparsers.add_parser(
        "import-student",
        help="calibrate, evaluate and publish a student from a distillation run",
    )
    _add_data_arguments(student)
    student.add_argument("run_dir", type=Path, help="the --out directory of a distil run")
    student.add_argument("--index", type=int, default=0, help="which student of the run")
    _add_lexical_arguments(student)
    _add_output_arguments(student, tag="distilled", gate=True)
    add_config_arguments(student, ModelConfig, TrainingConfig, ClickHouseConfig)
    student.set_defaults(func=run_import_student)


def run_import_student(args: argparse.Namespace) -> int:
    from training.distil import import_student

    model, data = _model_and_data(args, resolve(TrainingConfig, args))
    return _build_and_publish(
        args,
        model,
        lambda out: import_student(
            data, args.run_dir, args.index, out, tag=args.tag, lexical=_lexical(args)
        ),
        data,
    )


def _register_repackage(subparsers: argparse._SubParsersAction) -> None:
    repack = subparsers.add_parser(
        "repackage",
        help="package a published model again (calibration, test evaluation, ONNX export) "
        "as a new version, weights unchanged",
    )
    _add_data_arguments(repack)
    repack.add_argument("model", help="registry version or model directory")
    _add_lexical_arguments(repack)
    _add_output_arguments(repack, tag="repackaged", gate=False)
    add_config_arguments(repack, ModelConfig, TrainingConfig, ClickHouseConfig)
    repack.set_defaults(func=run_repackage)


def run_repackage(args: argparse.Namespace) -> int:
    from training.train import repackage

    model, data = _model_and_data(args, resolve(TrainingConfig, args))
    model_dir = _model_dir(model, args.model)
    return _build_and_publish(
        args,
        model,
        lambda out: repackage(data, model_dir, out, tag=args.tag, lexical=_lexical(args)),
    )


# --- retraining from the stream -----------------------------------------------------------------


RETRAIN_DESCRIPTION = """\
Fine-tune the served model on the rated reviews the stream stored in ClickHouse.

Reads: the reviews with a rating in the configured ClickHouse (--clickhouse-*, either backend),
by default those stored (processed_at) since the served model was built (its card's
created_at; --since changes it); ratings map to labels as in training: 4-5 positive, 1-2
negative, 3 neutral (not trained on: a two-class model; the held-back 3-star reviews give each
model's neutral share). In time order, the newest --holdback share is held back as a test set
and the --validation-share before it calibrates. Also reads the corpus the served model was
built on (--training-corpus or --data; its split hash must match the card's).

Trains: the served network, fine-tuned on CPU on mixes of corpus training reviews and traffic
(the rule's traffic share: its natural share clamped to [--min-traffic-share,
--max-traffic-share], the larger side subsampled, at most --max-mix-rows), in the runs of
--fine-tune-runs (SHARE:EPOCHS each, SHARE 'rule' or a fixed share); every run's epoch ends
are candidates. Its TF-IDF half is refitted on corpus + traffic (traffic weighted to the rule's
share).

Chooses on validation (corpus validation + the traffic validation slice, the traffic carrying
--traffic-validation-weight of the weight): the candidate and the fusion weight with the best
weighted accuracy among those whose corpus validation accuracy stays within --max-corpus-drop
of the served model's (the TF-IDF half's C: the best weighted accuracy); calibrates on the
same weighted validation.
The candidate is published as a new version either way; its card records every candidate's
scores (retraining.selection).

Gate (both models through the serving runtime; the decision is printed as JSON): the corpus
test split may lose at most --max-corpus-drop accuracy, the held-back traffic slice must
gain more than --min-traffic-gain (and hold at least --min-holdback-reviews rated reviews),
and the candidate's ECE must stay under --max-ece. CURRENT moves only when it passes (never
with --publish-only, for shadowing first).

Exit codes: 0 promoted (or published with --publish-only and the gate passed), 2 the corpus
is not the served model's, 3 not promoted, 4 no rated reviews to learn from."""


def _register_retrain(subparsers: argparse._SubParsersAction) -> None:
    from training.gate import RetrainRules
    from training.retrain import RetrainOptions
    from training.selection import describe_runs
    from training.traffic import MixRule

    defaults, rules, mix = RetrainOptions(), RetrainRules(), MixRule()
    retrain = subparsers.add_parser(
        "retrain",
        help="fine-tune the served model on rated reviews from ClickHouse, gated",
        description=RETRAIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = retrain.add_argument_group("data")
    data.add_argument(
        "--data",
        type=Path,
        action="append",
        help="the corpus the served model was built on [default: --training-corpus]",
    )
    data.add_argument(
        "--since",
        help="read reviews stored at or after this ISO time, or 'all' "
        "[default: the served model's build time]",
    )
    data.add_argument("--holdback", type=float, default=defaults.holdback)
    data.add_argument("--validation-share", type=float, default=defaults.validation)
    data.add_argument("--min-traffic-share", type=float, default=mix.min_share)
    data.add_argument("--max-traffic-share", type=float, default=mix.max_share)
    data.add_argument("--max-mix-rows", type=int, default=mix.max_rows)
    fitting = retrain.add_argument_group("fine-tuning")
    fitting.add_argument("--model", help="the model to fine-tune [the served one: CURRENT]")
    fitting.add_argument(
        "--fine-tune-runs",
        default=describe_runs(defaults.runs),
        type=_fine_tune_runs,
        help="fine-tuning runs, SHARE:EPOCHS comma-separated (SHARE: 'rule' or the traffic's "
        "share of the run's mix); every epoch end is a candidate [default: %(default)s]",
    )
    fitting.add_argument(
        "--traffic-validation-weight",
        type=float,
        default=defaults.traffic_validation_weight,
        help="the traffic validation slice's share of the validation weight in choosing "
        "(the corpus validation split has the rest) [default: %(default)s]",
    )
    fitting.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    fitting.add_argument("--train-batch-size", type=int, default=defaults.batch_size)
    fitting.add_argument("--seed", type=int, default=defaults.seed)
    fitting.add_argument("--no-lexical", action="store_true", help="no TF-IDF half")
    fitting.add_argument("--no-progress", action="store_true")
    gate = retrain.add_argument_group("gate")
    gate.add_argument("--max-corpus-drop", type=float, default=rules.max_corpus_drop)
    gate.add_argument("--min-traffic-gain", type=float, default=rules.min_traffic_gain)
    gate.add_argument("--min-holdback-reviews", type=int, default=rules.min_holdback_reviews)
    gate.add_argument("--max-ece", type=float, default=rules.max_ece)
    out = retrain.add_argument_group("output")
    out.add_argument("--tag", default=defaults.tag, help="suffix of the version name")
    out.add_argument("--out", type=Path, help="also keep the model directory here")
    out.add_argument(
        "--publish-only",
        action="store_true",
        help="publish the candidate without moving CURRENT even if the gate passes "
        "(e.g. to shadow it first: reviewpulse shadow start VERSION)",
    )
    add_config_arguments(retrain, ModelConfig, TrainingConfig, ClickHouseConfig)
    retrain.set_defaults(func=run_retrain)


def _fine_tune_runs(spec: str) -> tuple:
    from training.selection import parse_runs

    try:
        return parse_runs(spec)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_retrain(args: argparse.Namespace) -> int:
    import sys
    from datetime import UTC, datetime

    import torch

    from model.card import ModelCard
    from training.gate import RetrainRules
    from training.pipeline import prepare_data
    from training.retrain import EXIT_NO_RATINGS, NoRatings, RetrainOptions, read_traffic, retrain
    from training.traffic import MixRule
    from training.train import publish_result, summary_line

    model = resolve(ModelConfig, args)
    clickhouse = resolve(ClickHouseConfig, args)
    served_dir = _model_dir(model, args.model)
    card = ModelCard.read(served_dir)
    if args.since == "all":
        since = None
    else:
        since = datetime.fromisoformat(args.since or card.created_at)
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    traffic = read_traffic(clickhouse, since)
    window = f"stored since {since.isoformat()}" if since else "stored at any time"
    if not traffic.reviews:
        print(
            f"retrain: no rated reviews in ClickHouse database {clickhouse.clickhouse_database!r} "
            f"{window} (the served model {card.version} was built {card.created_at}); nothing "
            "to learn from. Run the stream on rated reviews first, or pass --since.",
            file=sys.stderr,
        )
        return EXIT_NO_RATINGS
    print(f"traffic: {len(traffic.reviews)} rated reviews {window}")
    torch.set_num_threads(model.model_threads)
    corpus = prepare_data(args.data or [resolve(TrainingConfig, args).training_corpus])
    options = RetrainOptions(
        holdback=args.holdback,
        validation=args.validation_share,
        mix=MixRule(args.min_traffic_share, args.max_traffic_share, args.max_mix_rows),
        runs=args.fine_tune_runs,
        traffic_validation_weight=args.traffic_validation_weight,
        learning_rate=args.learning_rate,
        batch_size=args.train_batch_size,
        seed=args.seed,
        lexical=not args.no_lexical,
        tag=args.tag,
        rules=RetrainRules(
            max_corpus_drop=args.max_corpus_drop,
            min_traffic_gain=args.min_traffic_gain,
            min_holdback_reviews=args.min_holdback_reviews,
            max_ece=args.max_ece,
        ),
    )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            outcome = retrain(
                served_dir,
                corpus,
                traffic,
                args.out or Path(tmp) / "model",
                options,
                runtime=model.model_runtime,
                threads=model.model_threads,
                progress=not args.no_progress,
            )
        except NoRatings as error:
            print(f"retrain: {error}; nothing to learn from.", file=sys.stderr)
            return EXIT_NO_RATINGS
        except ValueError as error:  # another corpus than the served model's, a 3-class model
            print(f"retrain: {error}", file=sys.stderr)
            return 2
        decision = outcome.decision
        promote = decision.promote and not args.publish_only
        print("mix: " + json.dumps(outcome.plan.to_dict(), ensure_ascii=False))
        print("gate: " + json.dumps(decision.to_dict()))
        target = publish_result(
            outcome.result, model.model_registry, model.model_name, make_current=promote
        )
    print(summary_line(outcome.result))
    print(f"published {target}" + (" as CURRENT" if promote else " (CURRENT unchanged)"))
    return 0 if decision.promote else EXIT_NOT_PROMOTED


# --- reports ------------------------------------------------------------------------------------


def _register_reports(subparsers: argparse._SubParsersAction) -> None:
    explore = subparsers.add_parser(
        "explore", help="exploration report: labels per category, lengths, top words (PNGs)"
    )
    _add_data_arguments(explore)
    explore.add_argument(
        "--out", type=Path, help="report directory [default: --training-reports/exploration]"
    )
    add_config_arguments(explore, TrainingConfig, ClickHouseConfig)
    explore.set_defaults(func=run_explore)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="evaluation report: served model vs TF-IDF baselines (JSON + PNGs)",
        description="Accuracy and macro-F1 overall and per category, confusion matrix, learning "
        "curves, model comparison, calibration (ECE) and forward throughput, all on the "
        "pipeline's own split.",
    )
    _add_data_arguments(evaluate)
    evaluate.add_argument("--model", help="registry version or model directory [CURRENT]")
    evaluate.add_argument(
        "--baselines",
        default="chars-lr,words-lr,chars-rf,words-rf",
        help="comma list of {chars,words}-{lr,rf}",
    )
    evaluate.add_argument("--distil-report", type=Path, help="distil.json of the teacher run")
    evaluate.add_argument(
        "--reuse-baselines",
        type=Path,
        help="figures.json of an earlier report on the same split: skip refitting baselines",
    )
    evaluate.add_argument(
        "--out", type=Path, help="report directory [default: --training-reports/evaluation]"
    )
    add_config_arguments(evaluate, ModelConfig, TrainingConfig, ClickHouseConfig)
    evaluate.set_defaults(func=run_evaluate)

    tune = subparsers.add_parser("tune", help="Optuna search over BERT hyperparameters")
    _add_data_arguments(tune)
    tune.add_argument("--trials", type=int, default=8)
    tune.add_argument("--epochs", type=float, default=2.0, help="epochs per trial")
    tune.add_argument("--timeout-s", type=float, help="stop the study after this long")
    tune.add_argument("--tokenizer", choices=("wordpiece", "char"), default="wordpiece")
    tune.add_argument(
        "--out", type=Path, help="report directory [default: --training-reports/tuning]"
    )
    add_config_arguments(tune, ModelConfig, TrainingConfig, ClickHouseConfig)
    tune.set_defaults(func=run_tune)


def run_explore(args: argparse.Namespace) -> int:
    from training.explore import explore

    training = resolve(TrainingConfig, args)
    data = _prepare(args, training)
    out = args.out or training.training_reports / "exploration"
    reviews = data.split.train + data.split.validation + data.split.test
    summary = explore(reviews, out, data_summary=data.describe().to_dict())
    print(json.dumps({"reviews": summary["reviews"], "labels": summary["labels"]}))
    print(f"wrote {out}/exploration.md")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from training.report import write_report

    training = resolve(TrainingConfig, args)
    model, data = _model_and_data(args, training)
    out = args.out or training.training_reports / "evaluation"
    distil = (
        json.loads(args.distil_report.read_text(encoding="utf-8")) if args.distil_report else None
    )
    reused = None
    if args.reuse_baselines:
        earlier = json.loads(args.reuse_baselines.read_text(encoding="utf-8"))
        if earlier["data"]["split"]["sha256"] != data.split.sha256:
            raise SystemExit("--reuse-baselines: that report used a different split")
        reused = earlier["baselines"]
    figures = write_report(
        data,
        _model_dir(model, args.model),
        out,
        baselines=[b for b in args.baselines.split(",") if b],
        distil_report=distil,
        baseline_figures=reused,
        threads=model.model_threads,
        runtime=model.model_runtime,
        token_budget=model.model_token_budget,
    )
    for name, scores in figures["comparison"].items():
        print(f"{name:32s} test accuracy {scores['accuracy']:.4f}  macro-F1 {scores['macro_f1']}")
    print(f"throughput {figures['model']['throughput_reviews_per_s']}")
    print(f"wrote {out}/report.md and figures.json")
    return 0


def run_tune(args: argparse.Namespace) -> int:
    from training.tune import tune

    training = resolve(TrainingConfig, args)
    _, data = _model_and_data(args, training)
    out = args.out or training.training_reports / "tuning"
    result = tune(
        data,
        out,
        trials=args.trials,
        epochs=args.epochs,
        timeout_s=args.timeout_s,
        tokenizer=args.tokenizer,
    )
    print(json.dumps({"best_value": result["best_value"], "best_params": result["best_params"]}))
    print(f"wrote {out}/tuning.json")
    return 0


# --- benchmark ----------------------------------------------------------------------------------


def _register_bench(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench-model",
        help="print the served model's forward throughput (reviews/s)",
        description="Runs SentimentModel.predict_batch over corpus reviews in batches of "
        "--batch reviews (default 64) with --model-threads threads, "
        "for the served model and any --compare models, in interleaved rounds so their "
        "ratio is fair on a shared machine.",
    )
    bench.add_argument("--model", help="registry version or model directory [CURRENT]")
    bench.add_argument("--compare", action="append", default=[], help="more versions or dirs")
    bench.add_argument("--texts", type=int, default=4096, help="reviews per pass")
    bench.add_argument(
        "--batch", type=int, default=64, help="reviews per predict_batch call (the target: 64)"
    )
    bench.add_argument("--rounds", type=int, default=3, help="best of N passes")
    bench.add_argument(
        "--runtimes",
        default="",
        help="comma list of runtimes to measure side by side, e.g. onnx,torch "
        "[the --model-runtime setting]",
    )
    add_config_arguments(bench, ModelConfig, TrainingConfig)
    bench.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    import random

    from model.text import clean_text
    from training.bench import load_models, throughput
    from training.data import load_file

    model = resolve(ModelConfig, args)
    reviews, _ = load_file(resolve(TrainingConfig, args).training_corpus)
    texts = [t for t in (clean_text(r.text) for r in reviews) if t]
    random.Random(7).shuffle(texts)
    texts = texts[: args.texts]
    paths = {"served": _model_dir(model, args.model)}
    for index, other in enumerate(args.compare):
        paths[f"compare{index + 1}"] = _model_dir(model, other)
    runtimes = [r for r in args.runtimes.split(",") if r] or [model.model_runtime]
    models = load_models(
        paths,
        threads=model.model_threads,
        max_length=model.model_max_length,
        runtimes=runtimes,
        token_budget=model.model_token_budget,
    )
    rates = throughput(models, texts, batch_size=args.batch, rounds=args.rounds)
    mean_chars = sum(len(t) for t in texts) / len(texts)
    print(
        f"{len(texts)} corpus reviews (mean {mean_chars:.0f} chars), batch {args.batch}, "
        f"{model.model_threads} threads, token budget {model.model_token_budget}, "
        f"best of {args.rounds}"
    )
    reference = next(iter(rates.values()))
    for name, loaded in models.items():
        line = ", ".join(
            f"{mode} {rate:,.0f} reviews/s (x{rate / reference[mode]:.2f})"
            for mode, rate in rates[name].items()
        )
        print(f"{name:18s} {loaded.version} [{loaded.runtime}]: {line}")
    return 0
