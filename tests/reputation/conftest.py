"""Fixtures for the reputation tests: a migrated ClickHouse database on either backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from stream.settings import Settings
from stream.sink.backend import ClickHouse, connect
from stream.sink.migrations import migrate


@pytest.fixture
def open_clickhouse() -> Iterator[Callable[[Settings], ClickHouse]]:
    """Connect and migrate; every connection opened is closed after the test (chdb allows
    one directory per process at a time)."""
    opened: list[ClickHouse] = []

    def open_(settings: Settings) -> ClickHouse:
        ch = connect(settings)
        opened.append(ch)
        migrate(ch)
        return ch

    yield open_
    for ch in reversed(opened):
        ch.close()


@pytest.fixture(params=["native", "embedded"])
def any_clickhouse(
    request: pytest.FixtureRequest,
    make_settings: Callable[..., Settings],
    open_clickhouse: Callable[[Settings], ClickHouse],
) -> ClickHouse:
    """A migrated database on ClickHouse 18.16 (native) and on chdb 26.x (embedded)."""
    return open_clickhouse(make_settings(clickhouse_backend=request.param))
