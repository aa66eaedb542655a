"""A connected ClickHouse per test, parametrised over both backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from stream.config import ClickHouseConfig, WorkerConfig
from stream.sink.backend import ClickHouse
from stream.sink.connection import connect
from stream.sink.migrations import migrate

BACKENDS = ("native", "embedded")


@pytest.fixture(params=BACKENDS)
def backend_config(
    request: pytest.FixtureRequest, make_config: Callable[..., WorkerConfig]
) -> ClickHouseConfig:
    """A fresh database on the 18.16 server ('native') or in chdb ('embedded')."""
    return make_config(clickhouse_backend=request.param).clickhouse


@pytest.fixture
def raw_ch(backend_config: ClickHouseConfig) -> Iterator[ClickHouse]:
    """A connection to an empty database."""
    ch = connect(backend_config)
    try:
        yield ch
    finally:
        ch.close()


@pytest.fixture
def ch(raw_ch: ClickHouse) -> ClickHouse:
    """A connection to a migrated database."""
    migrate(raw_ch)
    return raw_ch
