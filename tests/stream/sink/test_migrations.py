"""Migrations apply in order on 18.16 and chdb, are idempotent, and guard applied files."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from stream.sink.backend import ClickHouse
from stream.sink.migrations import (
    Migration,
    MigrationError,
    load_migrations,
    migrate,
    migrations_dir,
)
from stream.sink.version import server_version


def table_names(ch: ClickHouse) -> set[str]:
    return {
        row[0]
        for row in ch.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
    }


@pytest.mark.clickhouse
def test_every_migration_applies_once_then_nothing(raw_ch: ClickHouse) -> None:
    version = server_version(raw_ch)[:2]
    labels = [m.label for m in load_migrations() if not m.requires or m.requires <= version]
    assert migrate(raw_ch) == labels
    assert migrate(raw_ch) == []
    tables = table_names(raw_ch)
    expected = {"schema_migrations", "reviews", "sentiment_minute", "sentiment_minute_mv"}
    expected |= {"negative_keywords_hour", "negative_keywords_hour_mv"}
    assert expected <= tables
    ledger = raw_ch.query("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [f"{v:04d}_{n}" for v, n in ledger] == labels


@pytest.mark.clickhouse
def test_only_missing_migrations_apply_and_changed_ones_are_refused(
    raw_ch: ClickHouse, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    shutil.copy(migrations_dir() / "0001_reviews.sql", directory)
    assert migrate(raw_ch, directory) == ["0001_reviews"]

    (directory / "0002_notes.sql").write_text(
        "-- a second file\nCREATE TABLE IF NOT EXISTS {db}.notes (id String)\n"
        "ENGINE = MergeTree ORDER BY id;\n"
    )
    assert migrate(raw_ch, directory) == ["0002_notes"]
    assert "notes" in table_names(raw_ch)

    edited = directory / "0001_reviews.sql"
    edited.write_text(edited.read_text() + "\n-- edited after it was applied\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(raw_ch, directory)


def test_statements_split_on_line_end_semicolons_and_substitute_the_database() -> None:
    migration = Migration(
        7,
        "two",
        "-- comment; not a statement\nCREATE TABLE {db}.a (s String DEFAULT 'x;y')\n"
        "ENGINE = Memory;\n\nINSERT INTO {db}.a SELECT 'q' ;  \n",
    )
    assert migration.statements("db1") == [
        "CREATE TABLE db1.a (s String DEFAULT 'x;y')\nENGINE = Memory",
        "INSERT INTO db1.a SELECT 'q'",
    ]


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_reviews.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        load_migrations(tmp_path)


@pytest.mark.clickhouse
def test_a_column_added_by_a_concurrent_run_is_not_a_failure(raw_ch: ClickHouse) -> None:
    """Two workers starting at once both run 0020's ADD COLUMN (no IF NOT EXISTS on 18.16):
    the one that finds the column there records the migration and goes on."""
    migrate(raw_ch)
    raw_ch.execute("ALTER TABLE schema_migrations DELETE WHERE version = 20")
    for _ in range(50):  # mutations apply in the background
        if not raw_ch.query("SELECT count() FROM schema_migrations WHERE version = 20")[0][0]:
            break
        time.sleep(0.1)
    assert migrate(raw_ch) == ["0020_reviews_token_counts"]
