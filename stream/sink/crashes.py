"""``message_crashes`` (migration 0041): which input messages were in hand when a worker
process died, counted per message across restarts and workers. Blocking."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from stream.sink.backend import ClickHouse
from stream.sink.sql import quote

Position = tuple[str, int, int]
"""(topic, partition, offset) of one input message."""

COLUMNS = ("topic", "partition", "offset", "attempt", "worker", "crashed_at")


class CrashLedger:
    """Reads and records crashed attempts in ``message_crashes``."""

    def __init__(self, ch: ClickHouse) -> None:
        self.ch = ch

    def record(
        self, positions: Iterable[Position], *, attempt: str, worker: str, crashed_at: datetime
    ) -> None:
        """One row per position of the attempt that died (recording it again is harmless)."""
        rows = [(t, p, o, attempt, worker, crashed_at) for t, p, o in positions]
        if rows:
            self.ch.insert("message_crashes", COLUMNS, rows)

    def counts(self, positions: Sequence[Position]) -> dict[Position, int]:
        """Crashed attempts per position (positions never in a crash are left out). One query
        per batch: each partition's offsets as a range, the exact positions picked after."""
        wanted = set(positions)
        ranges: dict[tuple[str, int], list[int]] = {}
        for topic, partition, offset in wanted:
            ranges.setdefault((topic, partition), []).append(offset)
        if not ranges:
            return {}
        where = " OR ".join(
            f"(topic = {quote(topic)} AND partition = {int(partition)} "
            f"AND offset BETWEEN {int(min(offsets))} AND {int(max(offsets))})"
            for (topic, partition), offsets in ranges.items()
        )
        rows = self.ch.query(
            "SELECT topic, partition, offset, uniqExact(attempt) FROM message_crashes "
            f"WHERE {where} GROUP BY topic, partition, offset"
        )
        found = {(str(t), int(p), int(o)): int(n) for t, p, o, n in rows}
        return {position: n for position, n in found.items() if position in wanted}
