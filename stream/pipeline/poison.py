"""The last line of defence: a message that keeps crashing the worker is dead-lettered as
``poison`` instead of being read, crashed on and re-read for ever.

Validation turns every bad input it knows into a dead letter; this catches what it does not
know (a bug in a step, a crash in native code). Before each (sub-)batch the guard writes the
positions in hand to a small marker file, and removes it once the batch's outputs are
durable. A clean stop that leaves the batch unacked (a sink down, the DLQ limit, SIGTERM)
removes it too: those are not the messages' fault. So a marker found at start-up means the
previous process died with those messages in hand; the guard records them in ClickHouse
(``message_crashes``, shared by every worker) and forgets the file.

A message with at least one recorded crash is a suspect. Suspects go in small groups while
one more crash would leave each of them below ``limit``, and alone after that, so the crash
that reaches the limit implicates one message only; once a message has ``limit`` crashes it
is dead-lettered as ``poison`` without being read. Groups (about the square root of the
suspects, in number and in size) keep recovery short after a crash with thousands of
messages in hand, which one at a time go at the per-event rate. Innocent bystanders go
through in their group, or alone once their group crashed, and then count as cleared. The
poison needs no more crashes than if every suspect went alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from stream.pipeline.steps import Incoming
from stream.sink.crashes import CrashLedger, Position

log = logging.getLogger(__name__)


def position(message: Incoming) -> Position:
    return (message.topic, message.partition, message.offset)


def describe_positions(messages: Sequence[Incoming]) -> str:
    """``review.created[0]@100-163,[3]@17-40``: the offset range in hand per partition."""
    ranges: dict[tuple[str, int], list[int]] = {}
    for message in messages:
        ranges.setdefault((message.topic, message.partition), []).append(message.offset)
    parts = []
    for (topic, partition), offsets in sorted(ranges.items()):
        low, high = min(offsets), max(offsets)
        span = f"{low}" if low == high else f"{low}-{high}"
        parts.append(f"{topic}[{partition}]@{span}")
    return ",".join(parts) or "nothing"


class InflightMarker:
    """The positions in hand, in one file rewritten per batch (replace-on-rename, so a crash
    leaves either the old or the new list). It must outlive the process, not the machine:
    the page cache keeps it through a process crash, so it is not fsynced per batch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, attempt: str, positions: Sequence[Position]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        # orjson: every batch taken and acked rewrites the positions of all batches in flight
        temporary.write_bytes(orjson.dumps({"attempt": attempt, "positions": positions}))
        os.replace(temporary, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def read(self) -> tuple[str, list[Position]] | None:
        """What a dead process left, or None (a damaged file counts as nothing left)."""
        try:
            payload = json.loads(self.path.read_text())
            positions = [(str(t), int(p), int(o)) for t, p, o in payload["positions"]]
            return str(payload["attempt"]), positions
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a damaged in-flight marker %s: %s", self.path, exc)
            return None


@dataclass(frozen=True)
class Triage:
    """A batch split by crash history: the suspects' parts (each alone or in a small
    group) go first, then the rest together; the ``poison`` among the rest (crash count per
    position) are dead-lettered unread."""

    poison: dict[Position, int] = field(default_factory=dict)
    suspect_parts: list[list[Incoming]] = field(default_factory=list)
    rest: list[Incoming] = field(default_factory=list)

    @property
    def parts(self) -> list[list[Incoming]]:
        """What goes through, part by part, in order."""
        return self.suspect_parts + ([self.rest] if self.rest else [])

    @property
    def suspects(self) -> list[Incoming]:
        return [message for part in self.suspect_parts for message in part]


def triage_by_crashes(
    messages: Sequence[Incoming], counts: Mapping[Position, int], limit: int
) -> Triage:
    """Split ``messages`` by their crash ``counts`` (pure), keeping take order in each part.

    - ``limit`` crashes or more: poison, dead-lettered unread (listed with the rest);
    - ``limit`` - 1: alone, so that a crash now implicates this message only;
    - fewer: in groups of ceil(sqrt(n)) of the n such suspects. A group that crashes puts
      one crash on each member, which leaves every member below the limit: next time they go
      alone (or in smaller groups), so no bystander is dead-lettered for a neighbour.
    """
    poison: dict[Position, int] = {}
    alone: list[list[Incoming]] = []
    grouped: list[Incoming] = []
    rest: list[Incoming] = []
    for message in messages:
        crashes = counts.get(position(message), 0)
        if crashes >= limit:
            poison[position(message)] = crashes
            rest.append(message)
        elif crashes == 0:
            rest.append(message)
        elif crashes == limit - 1:
            alone.append([message])
        else:
            grouped.append(message)
    size = math.isqrt(len(grouped) - 1) + 1 if grouped else 1  # ceil(sqrt(n))
    groups = [grouped[start : start + size] for start in range(0, len(grouped), size)]
    return Triage(poison=poison, suspect_parts=alone + groups, rest=rest)


class PoisonGuard:
    """Crash bookkeeping around the batches of one worker process. ClickHouse work runs on
    ``executor`` (the ClickHouse thread); if ClickHouse cannot answer, the batch goes on
    without crash history (the store will then stop the worker anyway)."""

    def __init__(
        self,
        ledger: CrashLedger,
        marker: InflightMarker,
        executor: Executor,
        *,
        limit: int,
        worker: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.ledger = ledger
        self.marker = marker
        self.executor = executor
        self.limit = limit
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.clock = clock
        self._recovered = False

    async def _run(self, function: Callable, *args: object) -> object:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def recover(self) -> None:
        """Record what a dead predecessor left in hand (once per process; retried on the
        next batch if ClickHouse does not answer)."""
        if self._recovered:
            return
        left = self.marker.read()
        if left is not None:
            attempt, positions = left

            def record() -> None:
                self.ledger.record(
                    positions, attempt=attempt, worker=self.worker, crashed_at=self.clock()
                )

            await self._run(record)
            log.warning(
                "the previous worker process died with %d message(s) in hand (%s); each "
                "counts one crash towards poison (limit %d)",
                len(positions),
                ", ".join(f"{t}[{p}]@{o}" for t, p, o in positions[:20])
                + (" ..." if len(positions) > 20 else ""),
                self.limit,
            )
            self.marker.clear()
        self._recovered = True

    async def triage(self, messages: Sequence[Incoming]) -> Triage:
        """Split ``messages`` by their crash counts (no history: one part, as it came)."""
        try:
            await self.recover()
            counts = await self._run(self.ledger.counts, [position(m) for m in messages])
        except Exception as exc:
            log.warning("crash history unavailable, batch goes on without it: %s", exc)
            return Triage(rest=list(messages))
        assert isinstance(counts, dict)
        triage = triage_by_crashes(messages, counts, self.limit)
        for (topic, partition, offset), crashes in triage.poison.items():
            log.error(
                "poison: %s[%d]@%d crashed the worker %d times (limit %d); dead-lettered unread",
                topic,
                partition,
                offset,
                crashes,
                self.limit,
            )
        suspects = triage.suspects
        if suspects:
            log.warning(
                "%d message(s) were in hand at an earlier crash; they go first, alone or in "
                "small groups: %s",
                len(suspects),
                describe_positions(suspects),
            )
        return triage

    def begin(self, messages: Sequence[Incoming]) -> None:
        """Mark ``messages`` as in hand (before any of their work starts)."""
        self.marker.write(uuid.uuid4().hex, [position(m) for m in messages])

    def release(self) -> None:
        """Nothing in hand any more: the batch is durable, or the stop is not its fault."""
        self.marker.clear()


def marker_path(worker_data_dir: Path, app_id: str) -> Path:
    """Where a worker keeps its in-flight marker: beside Faust's data of the same app, which
    one worker process owns."""
    return worker_data_dir / app_id / "reviewpulse-inflight.json"
