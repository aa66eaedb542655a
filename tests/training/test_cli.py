"""Each training command takes the flags of the settings sections it reads, and no others."""

from __future__ import annotations

import argparse

import pytest

from stream.config import ClickHouseConfig, ModelConfig, resolve
from training.cli import register
from training.config import TrainingConfig

FOREIGN = ("--kafka-", "--alert-", "--web-", "--batch-", "--log-", "--sink-", "--dlq-")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reviewpulse")
    register(parser.add_subparsers(dest="command"))
    return parser


def _flags(command: str) -> set[str]:
    subparsers = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {flag for a in subparsers.choices[command]._actions for flag in a.option_strings}


def _section_flags(section: type) -> set[str]:
    return {"--" + name.replace("_", "-") for name in section.model_fields}


@pytest.mark.parametrize(
    ("command", "sections"),
    [
        ("train", (ModelConfig, TrainingConfig, ClickHouseConfig)),
        ("import-student", (ModelConfig, TrainingConfig, ClickHouseConfig)),
        ("repackage", (ModelConfig, TrainingConfig, ClickHouseConfig)),
        ("retrain", (ModelConfig, TrainingConfig, ClickHouseConfig)),
        ("evaluate", (ModelConfig, TrainingConfig, ClickHouseConfig)),
        ("tune", (ModelConfig, TrainingConfig, ClickHouseConfig)),
        ("explore", (TrainingConfig, ClickHouseConfig)),
        ("bench-model", (ModelConfig, TrainingConfig)),
    ],
)
def test_a_command_takes_only_the_sections_it_reads(command: str, sections: tuple) -> None:
    flags = _flags(command)
    for section in (ModelConfig, TrainingConfig, ClickHouseConfig):
        wanted = _section_flags(section)
        assert (wanted <= flags) == (section in sections), (command, section.__name__)
        assert wanted <= flags or not wanted & flags, (command, section.__name__)
    assert not [flag for flag in flags if flag.startswith(FOREIGN)]


def test_flags_resolve_into_their_sections(tmp_path) -> None:
    corpus = tmp_path / "reviews.csv"
    args = _parser().parse_args(
        ["train", "--model-threads", "3", "--training-corpus", str(corpus), "--epochs", "1"]
    )
    assert resolve(ModelConfig, args).model_threads == 3
    assert resolve(TrainingConfig, args).training_corpus == corpus
    assert args.epochs == 1.0
