"""Conversions between Python values and ClickHouse data, shared by both backends.

SQL literals are built in ``stream.sink.sql``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any


def as_utc(moment: datetime) -> datetime:
    """Timezone-aware UTC; naive datetimes are taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def epoch_seconds(moment: datetime) -> int:
    """Unix seconds; naive datetimes are taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def insert_columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows transposed to ``width`` columns, ``datetime`` values as Unix seconds.

    Both backends insert column-wise: clickhouse-driver takes raw epoch ints without its
    per-value timezone conversion, and ClickHouse parses them into ``DateTime`` columns
    from JSON as well. Timestamps are memoised (a batch repeats many of them).
    """
    if any(len(row) != width for row in rows):
        raise ValueError(f"every row must have {width} values")
    columns = [list(column) for column in zip(*rows, strict=True)] if rows else []
    cache: dict[datetime, int] = {}
    for values in columns:
        first = next((v for v in values if v is not None), None)
        if not isinstance(first, datetime):
            continue
        for i, value in enumerate(values):
            if value is not None:
                seconds = cache.get(value)
                if seconds is None:
                    seconds = cache[value] = epoch_seconds(value)
                values[i] = seconds
    return columns


def _strip(type_name: str, wrapper: str) -> str | None:
    prefix = wrapper + "("
    if type_name.startswith(prefix) and type_name.endswith(")"):
        return type_name[len(prefix) : -1]
    return None


def from_clickhouse(type_name: str, value: Any) -> Any:
    """A value decoded from ClickHouse (JSONCompact text or clickhouse-driver) in the shared
    Python types: aware UTC datetimes, ints for 64-bit integers, lists for arrays."""
    if value is None:
        return None
    if (inner := _strip(type_name, "Nullable")) is not None:
        return from_clickhouse(inner, value)
    if (inner := _strip(type_name, "LowCardinality")) is not None:
        return from_clickhouse(inner, value)
    if (inner := _strip(type_name, "Array")) is not None:
        return [from_clickhouse(inner, item) for item in value]
    if type_name.startswith("DateTime"):
        if isinstance(value, str):
            return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        return as_utc(value)
    if type_name == "Date" and isinstance(value, str):
        return date.fromisoformat(value)
    if type_name.startswith(("UInt", "Int")) and isinstance(value, str):
        return int(value)
    if type_name.startswith("Float") and isinstance(value, str):
        return float(value)  # "inf", "nan"
    return value
