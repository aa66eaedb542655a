"""Liveness and readiness of the worker, decided from plain figures (pure).

The agent ticks a :class:`Heartbeat` around every batch; a timer measures the consumer lag of
the assigned partitions. From those:

- **live** unless a batch has been in hand longer than ``live_timeout_s``: the processing loop
  is stuck (an idle worker with nothing to read is live);
- **ready** when the start-up is done (model, jieba and ClickHouse prepared: a
  ``dependencies`` entry like any other), the group gave this member partitions, the broker
  and ClickHouse answer, and batches move: not stalled, where stalled is lag on the assigned
  partitions with no batch finished for ``stall_s`` (counted from the later of the last
  finished batch and the last assignment, so a fresh member is not judged on its
  predecessor's lag).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Heartbeat:
    """When the processing loop last took and finished a batch (monotonic seconds)."""

    clock: Callable[[], float] = time.monotonic
    started_at: float = field(default=0.0)
    in_hand_since: float | None = None
    last_done_at: float | None = None
    assigned_at: float | None = None
    batches_done: int = 0
    # Set while no batch is in hand: work of lower priority (POST /predict) waits for it.
    idle: threading.Event = field(default_factory=threading.Event)
    # When each batch in hand was taken, oldest first: the agent pipelines batches and they
    # finish (are acked) in the order taken, so in_hand_since is the oldest one's.
    taken: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.started_at = self.clock()
        self.idle.set()

    def batch_started(self) -> None:
        self.taken.append(self.clock())
        self.in_hand_since = self.taken[0]
        self.idle.clear()

    def batch_done(self) -> None:
        """The oldest batch in hand finished (batches finish in the order they started)."""
        self.last_done_at = self.clock()
        if self.taken:
            self.taken.popleft()
        self.in_hand_since = self.taken[0] if self.taken else None
        self.batches_done += 1
        if not self.taken:
            self.idle.set()

    def wait_idle(self, timeout_s: float) -> bool:
        """Block (another thread) until no batch is in hand (True), or ``timeout_s`` passed."""
        return self.idle.wait(timeout_s)

    def partitions_assigned(self) -> None:
        self.assigned_at = self.clock()

    def in_hand_s(self) -> float:
        """How long the batch in hand has been (0: none)."""
        return 0.0 if self.in_hand_since is None else self.clock() - self.in_hand_since

    def idle_s(self) -> float:
        """Seconds since a batch last finished, or since the later assignment or start."""
        marks = [m for m in (self.last_done_at, self.assigned_at) if m is not None]
        return self.clock() - max(marks or [self.started_at])


class PartitionLag(Protocol):
    """One partition's lag (``stream.kafka.ConsumerLag``): unprocessed messages."""

    @property
    def messages(self) -> int: ...


def liveness(heartbeat: Heartbeat, live_timeout_s: float) -> dict[str, Any]:
    in_hand = heartbeat.in_hand_s()
    body: dict[str, Any] = {
        "batch_in_hand_s": round(in_hand, 3),
        "batches_done": heartbeat.batches_done,
    }
    if in_hand > live_timeout_s:
        body["status"] = "down"
        body["reason"] = f"a batch has been in hand {in_hand:.0f}s (limit {live_timeout_s:.0f}s)"
    else:
        body["status"] = "ok"
    return body


def stalled(heartbeat: Heartbeat, lag: Mapping[int, PartitionLag], stall_s: float) -> bool:
    """Lag on assigned partitions and no batch finished for ``stall_s``."""
    behind = sum(part.messages for part in lag.values())
    return behind > 0 and heartbeat.idle_s() > stall_s


def readiness(
    *,
    heartbeat: Heartbeat,
    assigned: list[str],
    lag: Mapping[int, PartitionLag],
    dependencies: Mapping[str, Mapping[str, Any]],
    stall_s: float,
) -> dict[str, Any]:
    """Ready: partitions assigned, every dependency ``status == "ok"``, batches move."""
    reasons = []
    if not assigned:
        reasons.append("no partitions assigned (group join pending, or a spare member)")
    reasons += [
        f"{name} is {part.get('status')}"
        for name, part in dependencies.items()
        if part.get("status") != "ok"
    ]
    if stalled(heartbeat, lag, stall_s):
        reasons.append(
            f"{sum(p.messages for p in lag.values())} messages behind and no batch finished "
            f"for {heartbeat.idle_s():.0f}s (limit {stall_s:.0f}s)"
        )
    return {
        "status": "down" if reasons else "ok",
        "reasons": reasons,
        "assigned_partitions": assigned,
        "lag_messages": {str(p): part.messages for p, part in sorted(lag.items())},
        "idle_s": round(heartbeat.idle_s(), 3),
        **{name: dict(part) for name, part in dependencies.items()},
    }
