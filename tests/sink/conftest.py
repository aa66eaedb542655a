"""A connected ClickHouse per test, parametrised over both backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from stream.settings import Settings
from stream.sink.backend import ClickHouse, connect
from stream.sink.migrations import migrate

BACKENDS = ("native", "embedded")


@pytest.fixture(params=BACKENDS)
def backend_settings(request: pytest.FixtureRequest, make_settings: Callable[..., Settings]):
    """Settings for a fresh database on the 18.16 server ('native') or chdb ('embedded')."""
    return make_settings(clickhouse_backend=request.param)


@pytest.fixture
def raw_ch(backend_settings: Settings) -> Iterator[ClickHouse]:
    """A connection to an empty database."""
    ch = connect(backend_settings)
    try:
        yield ch
    finally:
        ch.close()


@pytest.fixture
def ch(raw_ch: ClickHouse) -> ClickHouse:
    """A connection to a migrated database."""
    migrate(raw_ch)
    return raw_ch
