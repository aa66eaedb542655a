"""ClickHouse handles that stand in for a connection: both forward every call of the
``ClickHouse`` protocol, and differ in where the connection comes from and which thread runs
the call."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

from stream.sink.backend import ClickHouse


class ClickHouseProxy(ABC):
    """Forwards ``execute``, ``query`` and ``insert`` through :meth:`_call`."""

    @abstractmethod
    def _call(self, method: str, *args: Any) -> Any:
        """Run the connection's ``method`` with ``args`` and return its result."""

    def execute(self, sql: str) -> None:
        self._call("execute", sql)

    def query(self, sql: str) -> list[tuple]:
        return self._call("query", sql)

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence],
        settings: Mapping[str, str | int] | None = None,
    ) -> None:
        if settings:
            self._call("insert", table, columns, rows, settings)
        else:
            self._call("insert", table, columns, rows)


class SerialisedClickHouse(ClickHouseProxy):
    """A connection whose calls all run on ``executor`` (one thread), for blocking callers
    on other threads that share it with its owner. Closing it leaves the connection open:
    the owner closes it."""

    def __init__(self, clickhouse: ClickHouse, executor: Executor) -> None:
        self._clickhouse = clickhouse
        self._executor = executor
        self.database = clickhouse.database
        self.cluster = clickhouse.cluster

    def _call(self, method: str, *args: Any) -> Any:
        return self._executor.submit(getattr(self._clickhouse, method), *args).result()

    def close(self) -> None:
        """The owner closes the shared connection itself."""


class LazyClickHouse(ClickHouseProxy):
    """Opens the connection with ``factory`` on first use, so it is opened on the thread
    (and in the process, after a fork) that uses it."""

    def __init__(self, factory: Callable[[], ClickHouse]) -> None:
        self._factory = factory
        self._clickhouse: ClickHouse | None = None

    def _connection(self) -> ClickHouse:
        if self._clickhouse is None:
            self._clickhouse = self._factory()
        return self._clickhouse

    @property
    def database(self) -> str:
        return self._connection().database

    @property
    def cluster(self) -> str:
        return self._connection().cluster

    def _call(self, method: str, *args: Any) -> Any:
        return getattr(self._connection(), method)(*args)

    def close(self) -> None:
        if self._clickhouse is not None:
            self._clickhouse.close()
