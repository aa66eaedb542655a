"""Embedded ClickHouse (chdb) backend: a database directory inside this process.

chdb runs one embedded server per process, bound to one directory: further sessions on the
SAME directory share it (and may be opened and closed independently), but a session on a
DIFFERENT directory fails until every session on the first is closed. Two processes must
not open one directory at once, and cannot: the first holds the directory's writer lock
(``stream.sink.writer_lock``) and the second fails with :class:`DirectoryInUse`, which names
the directory and the holder (``reviewpulse report`` while the worker runs needs the native
backend, or waits until the worker stops; so does a second worker).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from stream.sink import writer_lock
from stream.sink.backend import check_identifier
from stream.sink.sql import settings_clause
from stream.sink.values import from_clickhouse, insert_columns
from stream.sink.writer_lock import DirectoryInUse

__all__ = ["DirectoryInUse", "EmbeddedClickHouse"]

_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


class EmbeddedClickHouse:
    """A chdb session on ``path`` with ``database`` as the current database.

    chdb serialises queries inside the engine too, but the lock keeps a multi-step call
    (none today) atomic and makes the thread-safety explicit.
    """

    cluster = ""  # in-process: never a cluster

    def __init__(self, path: Path, database: str) -> None:
        import chdb.session

        self.database = check_identifier(database)
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._locked: Path | None = writer_lock.acquire(self.path)  # or DirectoryInUse
        try:
            self._session = chdb.session.Session(str(self.path))
        except BaseException as exc:
            writer_lock.release(self._locked)
            if not isinstance(exc, RuntimeError):
                raise
            raise RuntimeError(
                f"cannot open chdb directory {self.path}: {exc}. One process can hold one "
                "chdb directory at a time; close the other connection first."
            ) from exc
        self._lock = threading.Lock()
        self._run(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self._run(f"USE {self.database}")

    def _run(self, sql: str, fmt: str = "CSV"):
        with self._lock:
            return self._session.query(sql, fmt)

    def execute(self, sql: str) -> None:
        self._run(sql)

    def query(self, sql: str) -> list[tuple]:
        result = self._run(sql, "JSONCompact")
        text = result.bytes()
        if not text:
            return []
        payload = json.loads(text)
        types = [column["type"] for column in payload["meta"]]
        return [
            tuple(from_clickhouse(t, v) for t, v in zip(types, row, strict=True))
            for row in payload["data"]
        ]

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence],
        settings: Mapping[str, str | int] | None = None,
    ) -> None:
        if not rows:
            return
        names = ", ".join(check_identifier(c) for c in columns)
        # The whole batch as one JSON array of columns (one C-speed encode); DateTime as
        # Unix seconds. JSON escaping makes any text safe: no SQL is built from values.
        data = _JSON.encode(insert_columns(rows, len(columns)))
        clause = f" SETTINGS {settings_clause(settings)}" if settings else ""
        sql = f"INSERT INTO {check_identifier(table)} ({names}){clause} FORMAT JSONCompactColumns\n"
        self._run(sql + data)

    def close(self) -> None:
        with self._lock:
            try:
                self._session.close()
            finally:
                if self._locked is not None:
                    writer_lock.release(self._locked)
                    self._locked = None
