"""``reviewpulse migrate`` and ``reviewpulse sql`` through the real CLI, on both backends."""

from __future__ import annotations

import pytest

from stream.cli import build_parser, main
from stream.config import ClickHouseConfig, config_flags


@pytest.mark.clickhouse
def test_migrate_then_sql_prints_the_rows(
    backend_config: ClickHouseConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = config_flags(backend_config)
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


@pytest.mark.parametrize("command", [["migrate"], ["sql", "SELECT 1"]])
def test_commands_take_only_clickhouse_flags(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    help_text = capsys.readouterr().out
    assert "--clickhouse-database" in help_text and "--chdb-path" in help_text
    assert "--kafka-broker" not in help_text and "--alert-interval-s" not in help_text
