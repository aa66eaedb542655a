"""``reviewpulse migrate`` and ``reviewpulse sql`` through the real CLI, on both backends."""

from __future__ import annotations

import pytest

from stream.cli import main
from stream.settings import Settings


def backend_flags(settings: Settings) -> list[str]:
    return [
        "--clickhouse-backend", settings.clickhouse_backend,
        "--clickhouse-host", settings.clickhouse_host,
        "--clickhouse-port", str(settings.clickhouse_port),
        "--clickhouse-database", settings.clickhouse_database,
        "--chdb-path", str(settings.chdb_path),
    ]  # fmt: skip


def test_migrate_then_sql_prints_the_rows(
    backend_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = backend_flags(backend_settings)
    assert main(["migrate", *flags]) == 0
    first = capsys.readouterr().out
    assert "applied 0001_reviews" in first and "0 of" in first.splitlines()[-1]

    assert main(["migrate", *flags]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("0 applied now")

    query = "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name"
    assert main(["sql", query, *flags]) == 0
    out = capsys.readouterr().out
    assert "reviews" in out.split() and "sentiment_minute" in out.split()
    assert out.rstrip().endswith("rows)")
