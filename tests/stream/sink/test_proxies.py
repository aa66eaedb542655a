"""The two connection proxies: every call forwarded, on the right thread, opened when due."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from stream.config import ClickHouseConfig
from stream.sink.connection import connect
from stream.sink.proxies import LazyClickHouse, SerialisedClickHouse


class Recorder:
    """A stand-in connection that records each call and the thread it ran on."""

    database = "recorded"
    cluster = ""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, str]] = []

    def _record(self, name: str, *args: object) -> None:
        self.calls.append((name, args, threading.current_thread().name))

    def execute(self, sql: str) -> None:
        self._record("execute", sql)

    def query(self, sql: str) -> list[tuple]:
        self._record("query", sql)
        return [(sql,)]

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
        self._record("insert", table, columns, rows)

    def close(self) -> None:
        self._record("close")


def test_serialised_runs_every_call_on_the_executor_and_leaves_closing_to_the_owner() -> None:
    recorder = Recorder()
    with ThreadPoolExecutor(1, thread_name_prefix="owner") as executor:
        proxy = SerialisedClickHouse(recorder, executor)
        assert proxy.database == "recorded"
        proxy.execute("OPTIMIZE TABLE t")
        assert proxy.query("SELECT 1") == [("SELECT 1",)]
        proxy.insert("t", ("a",), [(1,)])
        proxy.close()
    assert [(name, args) for name, args, _ in recorder.calls] == [
        ("execute", ("OPTIMIZE TABLE t",)),
        ("query", ("SELECT 1",)),
        ("insert", ("t", ("a",), [(1,)])),
    ]
    assert all(thread.startswith("owner") for _, _, thread in recorder.calls)


def test_lazy_opens_on_first_use_only() -> None:
    opened: list[Recorder] = []

    def factory() -> Recorder:
        opened.append(Recorder())
        return opened[-1]

    unused = LazyClickHouse(factory)
    unused.close()
    assert opened == []

    proxy = LazyClickHouse(factory)
    assert proxy.query("SELECT 2") == [("SELECT 2",)]
    proxy.execute("SELECT 3")
    assert proxy.database == "recorded"
    proxy.close()
    [connection] = opened
    assert [name for name, _, _ in connection.calls] == ["query", "execute", "close"]


@pytest.mark.clickhouse
def test_lazy_on_a_real_backend(backend_config: ClickHouseConfig) -> None:
    proxy = LazyClickHouse(lambda: connect(backend_config))
    try:
        assert proxy.database == backend_config.clickhouse_database
        proxy.execute("CREATE TABLE t (n UInt8) ENGINE = Memory")
        proxy.insert("t", ("n",), [(1,), (2,)])
        assert proxy.query("SELECT sum(n) FROM t") == [(3,)]
    finally:
        proxy.close()
