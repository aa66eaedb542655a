"""SQL literals: exact text, and the same values back from both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stream.sink.backend import ClickHouse
from stream.sink.sql import ID_CHUNK, chunks, datetime_literal, in_list, quote

TRICKY = "it's a \\ back'slash \"评论\"\n"


def test_literal_text() -> None:
    assert quote("a'b\\c") == "'a\\'b\\\\c'"
    assert in_list(["p1", "o'k"]) == "('p1', 'o\\'k')"
    shanghai = datetime(2026, 1, 1, 8, 0, 1, 999_999, tzinfo=timezone(timedelta(hours=8)))
    assert datetime_literal(shanghai) == "toDateTime('2026-01-01 00:00:01', 'UTC')"
    assert datetime_literal(datetime(2026, 1, 1)) == "toDateTime('2026-01-01 00:00:00', 'UTC')"


def test_chunks_cover_every_value_once_within_the_limit() -> None:
    values = [str(i) for i in range(2 * ID_CHUNK + 1)]
    parts = list(chunks(values))
    assert [len(p) for p in parts] == [ID_CHUNK, ID_CHUNK, 1]
    assert [v for p in parts for v in p] == values
    assert list(chunks([])) == []


@pytest.mark.clickhouse
def test_literals_read_back_as_the_values(raw_ch: ClickHouse) -> None:
    moment = datetime(2026, 3, 31, 23, 58, 7, tzinfo=UTC)
    sql = (
        f"SELECT {quote(TRICKY)}, {datetime_literal(moment)}, {quote('b')} IN {in_list(['a', 'b'])}"
    )
    assert raw_ch.query(sql) == [(TRICKY, moment, 1)]
