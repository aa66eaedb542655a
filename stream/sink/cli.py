"""``reviewpulse migrate`` and ``reviewpulse sql``: the configured ClickHouse, by hand."""

from __future__ import annotations

import argparse

from stream.config import ClickHouseConfig, add_config_arguments, resolve


def cmd_migrate(args: argparse.Namespace) -> int:
    from stream.sink.connection import connect
    from stream.sink.migrations import applied_versions, load_migrations, migrate

    config = resolve(ClickHouseConfig, args)
    ch = connect(config.for_migrations())  # the DDL user, when one is set
    try:
        applied = migrate(ch)
        recorded = len(applied_versions(ch))
    finally:
        ch.close()
    where = (
        f"{config.clickhouse_host}:{config.clickhouse_port}"
        if config.clickhouse_backend == "native"
        else str(config.chdb_path)
    )
    total = len(load_migrations())
    print(f"database {config.clickhouse_database} on {config.clickhouse_backend} ({where})")
    for label in applied:
        print(f"  applied {label}")
    waiting = total - recorded  # files marked "-- requires ClickHouse X.Y" on an older server
    print(
        f"{len(applied)} applied now; {recorded - len(applied)} of {total} were applied before"
        + (f"; {waiting} need a newer ClickHouse" if waiting else "")
    )
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from stream.reputation.reports import format_table
    from stream.sink.connection import connect

    ch = connect(resolve(ClickHouseConfig, args))
    try:
        rows = ch.query(args.query)
    finally:
        ch.close()
    width = len(rows[0]) if rows else 0
    columns = [f"c{i + 1}" for i in range(width)]
    print(format_table([dict(zip(columns, row, strict=True)) for row in rows], columns))
    print(f"({len(rows)} rows)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="create or upgrade the ClickHouse schema (idempotent)",
        description="Apply the ordered SQL migrations in deploy/clickhouse/migrations that "
        "the database has not seen yet. Safe to run any number of times.",
    )
    add_config_arguments(parser, ClickHouseConfig)
    parser.set_defaults(func=cmd_migrate)

    sql = subparsers.add_parser(
        "sql",
        help="run one SQL query on the configured ClickHouse and print the rows",
        description="Run one query against the configured backend (for the embedded chdb "
        "directory, while no worker holds it). Tables live in --clickhouse-database.",
    )
    sql.add_argument("query", help='the SQL to run, e.g. "SELECT count() FROM reviews FINAL"')
    add_config_arguments(sql, ClickHouseConfig)
    sql.set_defaults(func=cmd_sql)
