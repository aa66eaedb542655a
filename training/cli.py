"""``reviewpulse`` subcommands of the training area: train, bench-model."""

from __future__ import annotations

import argparse
from pathlib import Path

from stream.settings import add_settings_arguments, settings_from_args
from training.data import DEFAULT_CORPUS


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        help="CSV/JSONL/zip of reviews with text and a 0/1 label or a 1-5 rating "
        f"(repeatable) [default: {DEFAULT_CORPUS.name}]",
    )
    parser.add_argument(
        "--from-clickhouse",
        action="store_true",
        help="also train on rated reviews stored in ClickHouse (clickhouse-* settings)",
    )
    parser.add_argument("--sample", type=int, help="use a stratified sample of N reviews")


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a sentiment BERT and publish it to the model registry",
        description="Load and clean the reviews, split them, train a BERT (from scratch over "
        "a character vocabulary, or fine-tuning a local Hugging Face checkpoint), calibrate on "
        "validation, evaluate once on test, and publish a versioned model directory.",
    )
    _add_data_arguments(train)
    train.add_argument("--init-checkpoint", type=Path, help="fine-tune this local HF model dir")
    train.add_argument("--hidden-size", type=int, default=128)
    train.add_argument("--layers", type=int, default=2)
    train.add_argument("--heads", type=int, default=2)
    train.add_argument("--intermediate-size", type=int, default=512)
    train.add_argument("--dropout", type=float, default=0.1)
    train.add_argument("--epochs", type=float, default=3.0)
    train.add_argument("--mlm-epochs", type=float, default=0.0, help="MLM warm-up epochs")
    train.add_argument("--train-batch-size", type=int, default=64)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--max-length", type=int, default=128)
    train.add_argument("--seed", type=int, default=13)
    train.add_argument("--time-budget-s", type=float, help="stop training after this long")
    train.add_argument("--tag", default="bert", help="suffix of the version name")
    train.add_argument("--out", type=Path, help="also keep the model directory here")
    train.add_argument("--no-current", action="store_true", help="publish without moving CURRENT")
    add_settings_arguments(train)
    train.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    import tempfile

    import torch

    from training.bert import BertSpec, TrainOptions
    from training.data import load_clickhouse
    from training.pipeline import prepare_data
    from training.train import TrainRequest, publish_result, summary_line, train_and_package

    settings = settings_from_args(args)
    torch.set_num_threads(settings.torch_threads)
    extra = load_clickhouse(settings) if args.from_clickhouse else []
    data = prepare_data(args.data or [DEFAULT_CORPUS], extra=extra, sample=args.sample)
    print(f"data: {data.split.summary()['sizes']} split sha256 {data.split.sha256[:16]}")
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
        ),
        init_checkpoint=args.init_checkpoint,
        mlm_epochs=args.mlm_epochs,
        tag=args.tag,
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "model"
        result = train_and_package(data, request, out)
        target = publish_result(
            result, settings.model_registry, settings.model_name, make_current=not args.no_current
        )
    print(summary_line(result))
    print(f"published {target}")
    return 0
