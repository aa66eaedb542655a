"""The ``reviewpulse`` entry point: every command builds, renders its help, and lists only
the settings sections it reads."""

from __future__ import annotations

import argparse

import pytest

from stream.cli import build_parser


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_command_renders_its_help(name: str) -> None:
    text = subcommands()[name].format_help()
    assert text.startswith("usage: ")


def test_produce_lists_only_what_it_reads() -> None:
    text = subcommands()["produce"].format_help()
    assert "--kafka-broker" in text and "--max-event-bytes" in text
    for foreign in ("--clickhouse-host", "--model-registry", "--alert-interval-s", "--web-port"):
        assert foreign not in text
