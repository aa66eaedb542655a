"""Fixtures shared by the stream tests: migrated ClickHouse databases on both backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from stream.config import ClickHouseConfig, WorkerConfig
from stream.sink.backend import ClickHouse
from stream.sink.connection import connect
from stream.sink.migrations import migrate


@pytest.fixture
def open_clickhouse() -> Iterator[Callable[[ClickHouseConfig], ClickHouse]]:
    """Connect and migrate; every connection opened is closed after the test (chdb allows
    one directory per process at a time)."""
    opened: list[ClickHouse] = []

    def open_(config: ClickHouseConfig) -> ClickHouse:
        ch = connect(config)
        opened.append(ch)
        migrate(ch)
        return ch

    yield open_
    for ch in reversed(opened):
        ch.close()


@pytest.fixture(params=["native", "embedded"])
def ch(
    request: pytest.FixtureRequest,
    make_config: Callable[..., WorkerConfig],
    open_clickhouse: Callable[[ClickHouseConfig], ClickHouse],
) -> ClickHouse:
    """A migrated database on ClickHouse 18.16 (native) and on chdb 26.x (embedded)."""
    return open_clickhouse(make_config(clickhouse_backend=request.param).clickhouse)
