"""``connect(config)``: the ClickHouse backend a :class:`ClickHouseConfig` names."""

from __future__ import annotations

from stream.config import ClickHouseConfig
from stream.sink.backend import ClickHouse, check_identifier


def connect(config: ClickHouseConfig) -> ClickHouse:
    """A backend for ``config.clickhouse_backend``; the database exists afterwards."""
    check_identifier(config.clickhouse_database)
    if config.clickhouse_cluster and config.clickhouse_backend != "native":
        raise ValueError(
            "clickhouse-cluster needs the server backend (clickhouse-backend=native): "
            "the embedded chdb is one process on one machine"
        )
    if config.clickhouse_backend == "native":
        from stream.sink.native import NativeClickHouse

        return NativeClickHouse.from_config(config)
    from stream.sink.embedded import EmbeddedClickHouse

    return EmbeddedClickHouse(config.chdb_path, config.clickhouse_database)
