"""What the connected ClickHouse can do, by its version (18.16 on Debian, 24.x in compose,
26.x in chdb): features are chosen once per connection, never guessed per query."""

from __future__ import annotations

import re

from stream.sink.backend import ClickHouse

INSERT_TOKENS = (22, 2)
"""``insert_deduplication_token`` and ``non_replicated_deduplication_window`` exist from here."""


def server_version(ch: ClickHouse) -> tuple[int, ...]:
    """``SELECT version()`` as numbers: ``(26, 9, 2, 1)``."""
    text = str(ch.query("SELECT version()")[0][0])
    return tuple(int(part) for part in re.findall(r"\d+", text))


def at_least(ch: ClickHouse, wanted: tuple[int, ...]) -> bool:
    return server_version(ch)[: len(wanted)] >= wanted
