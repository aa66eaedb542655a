"""ClickHouse server backend over the native protocol (clickhouse-driver).

18.16 gotcha: ``INSERT ... VALUES ('a', 1)`` with literal values hangs with clickhouse-driver,
so inserts always send rows as parameters (``INSERT INTO t (cols) VALUES`` + rows).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from clickhouse_driver import Client

from stream.sink.backend import check_identifier
from stream.sink.values import from_clickhouse, insert_columns

if TYPE_CHECKING:
    from stream.config import ClickHouseConfig


class NativeClickHouse:
    """One clickhouse-driver connection. A lock serialises calls: the client is not
    thread-safe and the worker calls it from executor threads."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        database: str,
        user: str = "default",
        password: str = "",
        timeout_s: float = 30.0,
        cluster: str = "",
    ) -> None:
        self.database = check_identifier(database)
        self.cluster = check_identifier(cluster) if cluster else ""
        options = {
            "host": host,
            "port": port,
            "user": user,
            "password": password,
            "connect_timeout": min(timeout_s, 10.0),
            "send_receive_timeout": timeout_s,
            "sync_request_timeout": min(timeout_s, 5.0),
        }
        bootstrap = Client(**options)
        try:
            # Only when missing: a user without DDL rights (the worker's) may not even try.
            exists = bootstrap.execute(
                f"SELECT count() FROM system.databases WHERE name = '{self.database}'"
            )[0][0]
            if not exists:
                bootstrap.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        finally:
            bootstrap.disconnect()
        # Cluster mode: an insert into a Distributed table returns once every shard holds its
        # part, so an acked batch is on the shards, not in one node's send queue.
        settings = {"insert_distributed_sync": 1} if self.cluster else {}
        self._client = Client(database=self.database, settings=settings, **options)
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: ClickHouseConfig) -> NativeClickHouse:
        return cls(
            host=config.clickhouse_host,
            port=config.clickhouse_port,
            database=config.clickhouse_database,
            user=config.clickhouse_user,
            password=config.clickhouse_password,
            timeout_s=config.clickhouse_timeout_s,
            cluster=config.clickhouse_cluster,
        )

    def execute(self, sql: str) -> None:
        with self._lock:
            self._client.execute(sql)

    def query(self, sql: str) -> list[tuple]:
        with self._lock:
            rows, columns = self._client.execute(sql, with_column_types=True)
        types = [type_name for _, type_name in columns]
        return [
            tuple(from_clickhouse(t, v) for t, v in zip(types, row, strict=True)) for row in rows
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
        data = insert_columns(rows, len(columns))
        with self._lock:
            self._client.execute(
                f"INSERT INTO {check_identifier(table)} ({names}) VALUES",
                data,
                columnar=True,
                settings=dict(settings) if settings else None,
            )

    def close(self) -> None:
        with self._lock:
            self._client.disconnect()
