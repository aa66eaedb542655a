"""deploy/clickhouse/users.d/reviewpulse.xml on a real clickhouse-server (18.16): migrations
run as the DDL user, the worker's writer reads and inserts but cannot change the schema, the
reader only reads; passwords come from the server's environment."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stream.config import PROJECT_ROOT, ClickHouseConfig
from stream.local.clickhouse_server import ClickHouseServer
from stream.reputation.web import TimeLimited
from stream.sink.connection import connect
from stream.sink.migrations import migrate

pytestmark = pytest.mark.clickhouse

USERS = PROJECT_ROOT / "deploy" / "clickhouse" / "users.d" / "reviewpulse.xml"
PASSWORDS = {"DDL": "pw-ddl-1", "WRITER": "pw-writer-2", "READER": "pw-reader-3"}


@pytest.fixture
def users_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ClickHouseServer]:
    for role, password in PASSWORDS.items():
        monkeypatch.setenv(f"REVIEWPULSE_CH_{role}_PASSWORD", password)
    monkeypatch.delenv("REVIEWPULSE_CH_ADMIN_PASSWORD", raising=False)  # default: no password
    (tmp_path / "users.d").mkdir()
    shutil.copy(USERS, tmp_path / "users.d" / USERS.name)
    with ClickHouseServer(tmp_path) as server:
        yield server


def config(server: ClickHouseServer, user: str, password: str, **more: str) -> ClickHouseConfig:
    return ClickHouseConfig(
        clickhouse_backend="native",
        clickhouse_host=server.host,
        clickhouse_port=server.port,
        clickhouse_database="reviewpulse",
        clickhouse_user=user,
        clickhouse_password=password,
        **more,
    )


def test_each_user_can_do_its_job_and_no_more(users_server: ClickHouseServer) -> None:
    writer = config(
        users_server,
        "reviewpulse_writer",
        PASSWORDS["WRITER"],
        clickhouse_ddl_user="reviewpulse_ddl",
        clickhouse_ddl_password=PASSWORDS["DDL"],
    )
    with pytest.raises(Exception, match="Code: 392"):  # the writer may not create the database
        connect(writer)
    ddl = connect(writer.for_migrations())
    try:
        assert migrate(ddl)
    finally:
        ddl.close()

    ch = connect(writer)
    try:
        now = datetime(2024, 5, 1, tzinfo=UTC)
        ch.insert(
            "alert_progress",
            ["name", "evaluated_until", "updated_at", "version"],
            [("test", now, now, 1)],
        )
        assert ch.query("SELECT name, version FROM alert_progress FINAL") == [("test", 1)]
        with pytest.raises(Exception, match="Code: 392"):
            ch.execute("DROP TABLE reviews")
        with pytest.raises(Exception, match="Code: 392"):
            migrate(ch)  # even the idempotent CREATE ... IF NOT EXISTS is DDL
    finally:
        ch.close()

    reader = connect(config(users_server, "reviewpulse_reader", PASSWORDS["READER"]))
    try:
        assert TimeLimited(reader, 5).query("SELECT count() FROM alert_progress") == [(1,)]
        with pytest.raises(Exception, match="Code: 164"):  # readonly
            reader.execute("DROP TABLE reviews")
    finally:
        reader.close()
    with pytest.raises(Exception, match="Code: 193"):  # wrong password
        connect(config(users_server, "reviewpulse_reader", "guess"))
