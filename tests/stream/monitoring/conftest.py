"""A migrated ClickHouse database per test, on 18.16 (native) and chdb 26.x (embedded)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from stream.config import WorkerConfig
from stream.sink.backend import ClickHouse
from stream.sink.connection import connect
from stream.sink.migrations import migrate


@pytest.fixture(params=["native", "embedded"])
def ch(
    request: pytest.FixtureRequest, make_config: Callable[..., WorkerConfig]
) -> Iterator[ClickHouse]:
    connection = connect(make_config(clickhouse_backend=request.param).clickhouse)
    try:
        migrate(connection)
        yield connection
    finally:
        connection.close()
