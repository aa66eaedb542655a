"""Ordered, versioned SQL migrations: ``deploy/clickhouse/migrations/NNNN_name.sql``.

Each file holds one or more statements, each ending with ``;`` at the end of a line.
``{db}`` in a file stands for the target database; statements may also name tables
without a prefix (the connection's current database is the target database). Applied
versions are recorded in ``schema_migrations`` with the file's checksum; a changed
applied file is refused rather than silently skipped. Statements must be idempotent
(``IF NOT EXISTS``): two processes migrating at once both run them, harmlessly.

With ``ch.cluster`` set, each statement runs as its cluster form (:mod:`stream.sink.cluster`:
Replicated tables on every node, Distributed tables over them, ``ON CLUSTER``), the ledger is
one table replicated to every node, and nothing runs unless every node answers.

A file whose first line is ``-- requires ClickHouse X.Y`` runs only on servers of that
version or later; on older ones it is skipped and not recorded, so it runs after an upgrade.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from stream.config import PROJECT_ROOT
from stream.sink.backend import ClickHouse
from stream.sink.cluster import ShardedTable, cluster_statements, sharded_tables
from stream.sink.version import server_version

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")
_REQUIRES = re.compile(r"^-- requires ClickHouse (\d+)\.(\d+)\s*$")

CANDIDATE_DIRS = (
    PROJECT_ROOT / "deploy" / "clickhouse" / "migrations",  # source checkout / editable
    Path(sys.prefix) / "share" / "reviewpulse" / "migrations",  # pip install (data-files)
)


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def requires(self) -> tuple[int, int] | None:
        """The oldest ClickHouse version this file runs on (None: every version)."""
        first = self.sql.split("\n", 1)[0]
        match = _REQUIRES.match(first)
        return (int(match.group(1)), int(match.group(2))) if match else None

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    def statements(self, database: str) -> list[str]:
        text = self.sql.replace("{db}", database)
        parts = (strip_comments(part) for part in _STATEMENT_END.split(text))
        return [part for part in parts if part]


def strip_comments(sql: str) -> str:
    """Drop whole-line ``--`` comments and surrounding blank space."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return "\n".join(lines).strip()


def migrations_dir() -> Path:
    for candidate in CANDIDATE_DIRS:
        if candidate.is_dir():
            return candidate
    raise MigrationError(f"no migrations directory among {[str(c) for c in CANDIDATE_DIRS]}")


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations with version {version:04d}")
        found[version] = Migration(version, match.group(2), path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def ensure_ledger(ch: ClickHouse) -> None:
    columns = "version UInt32, name String, checksum String, applied_at DateTime('UTC')"
    if not ch.cluster:
        ch.execute(
            f"CREATE TABLE IF NOT EXISTS schema_migrations ({columns}) "
            "ENGINE = MergeTree ORDER BY version"
        )
        return
    # One replica set spanning every node (no {shard} in the path): any node reads the
    # whole ledger, and a record written on one reaches the others.
    ch.execute(f"CREATE DATABASE IF NOT EXISTS {ch.database} ON CLUSTER {ch.cluster}")
    ch.execute(
        f"CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER {ch.cluster} ({columns}) "
        f"ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{ch.database}/schema_migrations',"
        " '{replica}') ORDER BY version"
    )


def unreachable_nodes(ch: ClickHouse) -> list[str]:
    """host:port of every node of ``ch.cluster`` that does not answer (DDL ``ON CLUSTER``
    would wait for them, and leave the schema half-applied)."""
    nodes = ch.query(
        "SELECT host_address, port FROM system.clusters "
        f"WHERE cluster = '{ch.cluster}' ORDER BY shard_num, replica_num"
    )
    if not nodes:
        raise MigrationError(f"cluster {ch.cluster!r} is not in this server's remote_servers")
    down = []
    for host, port in nodes:
        try:
            ch.query(f"SELECT 1 FROM remote('{host}:{port}', system.one)")
        except Exception:
            down.append(f"{host}:{port}")
    return down


def done_by_another_run(sql: str, exc: Exception) -> bool:
    """``ADD COLUMN`` has no ``IF NOT EXISTS`` on 18.16: when two processes migrate at once
    (two workers starting), the second one's finds the column there. That is this statement
    done, not a failure."""
    return bool(
        re.match(r"^ALTER TABLE\s", sql, re.I)
        and re.search(r"\bADD COLUMN\b", sql, re.I)
        and re.search(r"column with this name already exists|already exists", str(exc))
    )


def run_statement(
    ch: ClickHouse, statement: str, tables: dict[str, ShardedTable], label: str
) -> None:
    statements = (
        cluster_statements(statement, ch.cluster, ch.database, tables)
        if ch.cluster
        else [statement]
    )
    for sql in statements:
        try:
            ch.execute(sql)
        except Exception as exc:
            if done_by_another_run(sql, exc):
                continue
            hint = (
                " (a node may be down: its part of this DDL runs when it returns; "
                "run the migrations again to finish and record it)"
                if ch.cluster
                else ""
            )
            raise MigrationError(f"{label}: {exc}{hint}") from exc


def applied_versions(ch: ClickHouse) -> dict[int, str]:
    """version -> checksum of what was applied (duplicates from concurrent runs collapse)."""
    rows = ch.query("SELECT version, any(checksum) FROM schema_migrations GROUP BY version")
    return {int(version): checksum for version, checksum in rows}


def migrate(ch: ClickHouse, directory: Path | None = None) -> list[str]:
    """Apply the migrations not applied yet, in order; return their labels."""
    migrations = load_migrations(directory)
    if ch.cluster and (down := unreachable_nodes(ch)):
        raise MigrationError(
            f"cluster {ch.cluster}: nodes {', '.join(down)} do not answer; DDL ON CLUSTER "
            "needs every node. Start them and run the migrations again."
        )
    ensure_ledger(ch)
    applied = applied_versions(ch)
    for migration in migrations:
        previous = applied.get(migration.version)
        if previous is not None and previous != migration.checksum:
            raise MigrationError(
                f"{migration.label}.sql changed after it was applied to {ch.database}; "
                "add a new migration instead of editing an applied one"
            )
    done = []
    tables = (
        sharded_tables(s for m in migrations for s in m.statements(ch.database))
        if ch.cluster
        else {}
    )
    version = server_version(ch) if any(m.requires for m in migrations) else ()
    for migration in migrations:
        if migration.version in applied:
            continue
        if migration.requires and version[:2] < migration.requires:
            continue  # needs a newer server; runs once the server is upgraded
        for statement in migration.statements(ch.database):
            run_statement(ch, statement, tables, migration.label)
        ch.insert(
            "schema_migrations",
            ("version", "name", "checksum", "applied_at"),
            [(migration.version, migration.name, migration.checksum, datetime.now(UTC))],
        )
        done.append(migration.label)
    return done
