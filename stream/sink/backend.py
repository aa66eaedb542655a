"""The ``ClickHouse`` protocol every backend implements, and identifier checks. A leaf.

Both backends make the configured database the connection's current database (creating
it if needed), so SQL may name tables without a database prefix. Every call blocks: the
worker runs them in an executor. Query results use the same Python types on both backends:
``DateTime`` as timezone-aware UTC ``datetime``, ``Enum8`` as ``str``, ``Nullable`` as
``None``, ``Array`` as ``list``. :func:`stream.sink.connection.connect` opens one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ClickHouse(Protocol):
    database: str
    cluster: str  # remote_servers name in cluster mode (stream.sink.cluster); "" on one node

    def execute(self, sql: str) -> None:
        """Run one statement that returns no rows (DDL, INSERT ... SELECT, OPTIMIZE)."""

    def query(self, sql: str) -> list[tuple]:
        """Run one SELECT and return its rows."""

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence],
        settings: Mapping[str, str | int] | None = None,
    ) -> None:
        """Insert ``rows`` (values in ``columns`` order) into ``table`` of this database, as
        one block, with per-query ``settings`` (e.g. ``insert_deduplication_token``)."""

    def close(self) -> None: ...


def check_identifier(name: str) -> str:
    """``name`` if it is a plain ClickHouse identifier (database, table, column names)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name
