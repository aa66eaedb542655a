"""SQL literals for the queries the sink and its users build as text.

Values reach SQL text only through these helpers, and the text runs unchanged on
ClickHouse 18.16 and chdb 26.x.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from stream.sink.values import as_utc

T = TypeVar("T")

# Values per IN (...) list: 18.16's max_query_size is 256 KiB.
ID_CHUNK = 2000


def quote(value: str) -> str:
    """A ClickHouse string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def in_list(values: Iterable[str]) -> str:
    """``('a', 'b')``: the right-hand side of an ``IN`` over string values."""
    return "(" + ", ".join(quote(value) for value in values) + ")"


def settings_clause(settings: Mapping[str, str | int]) -> str:
    """``name = value, ...`` for a ``SETTINGS`` clause (names checked, strings quoted)."""
    parts = []
    for name, value in settings.items():
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a setting name: {name!r}")
        parts.append(f"{name} = {quote(value) if isinstance(value, str) else int(value)}")
    return ", ".join(parts)


def datetime_literal(moment: datetime) -> str:
    """A ``DateTime('UTC')`` literal in whole seconds; naive datetimes are taken as UTC."""
    return f"toDateTime('{as_utc(moment):%Y-%m-%d %H:%M:%S}', 'UTC')"


def chunks(values: Sequence[T], size: int = ID_CHUNK) -> Iterator[Sequence[T]]:
    """``values`` in consecutive slices of at most ``size`` (one ``IN`` list each)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
