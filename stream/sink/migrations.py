"""Ordered, versioned SQL migrations: ``deploy/clickhouse/migrations/NNNN_name.sql``.

Each file holds one or more statements, each ending with ``;`` at the end of a line.
``{db}`` in a file stands for the target database; statements may also name tables
without a prefix (the connection's current database is the target database). Applied
versions are recorded in ``schema_migrations`` with the file's checksum; a changed
applied file is refused rather than silently skipped. Statements must be idempotent
(``IF NOT EXISTS``): two processes migrating at once both run them, harmlessly.
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

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")

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
    ch.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version UInt32, name String, checksum String, applied_at DateTime('UTC')"
        ") ENGINE = MergeTree ORDER BY version"
    )


def applied_versions(ch: ClickHouse) -> dict[int, str]:
    """version -> checksum of what was applied (duplicates from concurrent runs collapse)."""
    rows = ch.query("SELECT version, any(checksum) FROM schema_migrations GROUP BY version")
    return {int(version): checksum for version, checksum in rows}


def migrate(ch: ClickHouse, directory: Path | None = None) -> list[str]:
    """Apply the migrations not applied yet, in order; return their labels."""
    migrations = load_migrations(directory)
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
    for migration in migrations:
        if migration.version in applied:
            continue
        for statement in migration.statements(ch.database):
            try:
                ch.execute(statement)
            except Exception as exc:
                raise MigrationError(f"{migration.label}: {exc}") from exc
        ch.insert(
            "schema_migrations",
            ("version", "name", "checksum", "applied_at"),
            [(migration.version, migration.name, migration.checksum, datetime.now(UTC))],
        )
        done.append(migration.label)
    return done
