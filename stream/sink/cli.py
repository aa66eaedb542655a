"""``reviewpulse migrate``: apply the ClickHouse migrations to the configured backend."""

from __future__ import annotations

import argparse

from stream.settings import add_settings_arguments, settings_from_args


def cmd_migrate(args: argparse.Namespace) -> int:
    from stream.sink.backend import connect
    from stream.sink.migrations import load_migrations, migrate

    settings = settings_from_args(args)
    ch = connect(settings)
    try:
        applied = migrate(ch)
    finally:
        ch.close()
    where = (
        f"{settings.clickhouse_host}:{settings.clickhouse_port}"
        if settings.clickhouse_backend == "native"
        else str(settings.chdb_path)
    )
    total = len(load_migrations())
    print(f"database {settings.clickhouse_database} on {settings.clickhouse_backend} ({where})")
    for label in applied:
        print(f"  applied {label}")
    print(f"{len(applied)} applied now; {total - len(applied)} of {total} were applied before")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="create or upgrade the ClickHouse schema (idempotent)",
        description="Apply the ordered SQL migrations in deploy/clickhouse/migrations that "
        "the database has not seen yet. Safe to run any number of times.",
    )
    add_settings_arguments(parser)
    parser.set_defaults(func=cmd_migrate)
