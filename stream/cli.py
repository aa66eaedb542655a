"""The ``reviewpulse`` command line. Each area registers its own subcommands.

A command module exposes ``register(subparsers) -> None``; it adds parsers whose
``func(args) -> int | None`` runs the command. Heavy imports (torch, faust) stay inside
the command functions so ``reviewpulse --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "stream.local.cli",  # up, down: local Tansu + ClickHouse
    "stream.sink.cli",  # migrate
    "stream.worker_cli",  # worker, produce
    "training.cli",  # train, evaluate, bench-model, ...
    "stream.reputation.cli",  # report
    "stream.serving.cli",  # shadow start|stop|status|promote
    "stream.demo_cli",  # demo: everything on one machine
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reviewpulse",
        description="Real-time sentiment and reputation tracking for e-commerce reviews.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
