"""Conversions between Python values and ClickHouse text, shared by both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any


def quote(value: str) -> str:
    """A ClickHouse string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def as_utc(moment: datetime) -> datetime:
    """Timezone-aware UTC; naive datetimes are taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def datetime_text(moment: datetime) -> str:
    """``YYYY-MM-DD hh:mm:ss`` in UTC, what ``DateTime('UTC')`` parses (whole seconds)."""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S")


def json_ready(value: Any) -> Any:
    """A value ``json.dumps`` can write and ClickHouse's JSONEachRow parses into the column."""
    if isinstance(value, datetime):
        return datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [json_ready(item) for item in value]
    return value


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
