"""/reports/* limits: bounded windows, and ClickHouse's own per-query time limit, which stops a
slow report on both backends (server 18.16 and embedded chdb)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stream.config import WorkerConfig
from stream.reputation.web import (
    TIMEOUT_EXCEEDED,
    BadParameter,
    TimeLimited,
    complaints_args,
    products_args,
)
from stream.sink.connection import connect

SLOW = "SELECT count() FROM (SELECT number FROM system.numbers LIMIT 100000000000)"


def test_windows_are_bounded() -> None:
    assert complaints_args({"hours": "168"}, 168)["hours"] == 168
    with pytest.raises(BadParameter, match="between 1 and 168"):
        complaints_args({"hours": "720"}, 168)
    assert complaints_args({}, 12)["hours"] == 12  # the default never exceeds the bound
    assert products_args({"period": "24h"}, 24)["period"] == "24h"
    with pytest.raises(BadParameter, match=r"\['1h'\]"):
        products_args({"period": "24h"}, 6)


@pytest.mark.clickhouse
@pytest.mark.parametrize("backend", ["native", "embedded"])
def test_slow_report_queries_are_stopped_by_clickhouse(
    make_config: Callable[..., WorkerConfig], backend: str
) -> None:
    ch = connect(make_config(clickhouse_backend=backend).clickhouse)
    try:
        reads = TimeLimited(ch, 1)
        assert reads.query("SELECT 1;") == [(1,)]
        with pytest.raises(Exception) as stopped:
            reads.query(SLOW)
        assert TIMEOUT_EXCEEDED.search(str(stopped.value)), stopped.value
        with pytest.raises(PermissionError):
            reads.execute("DROP TABLE reviews")
    finally:
        ch.close()
