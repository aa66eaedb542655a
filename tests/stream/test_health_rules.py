"""Liveness and readiness decisions (stream.health) on a controlled clock."""

from __future__ import annotations

from stream.health import Heartbeat, liveness, readiness, stalled
from stream.kafka import ConsumerLag

OK = {"broker": {"status": "ok"}, "clickhouse": {"status": "ok"}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def beat() -> tuple[Heartbeat, Clock]:
    clock = Clock()
    return Heartbeat(clock=clock), clock


def test_idle_worker_is_live_and_a_stuck_batch_is_not() -> None:
    heartbeat, clock = beat()
    clock.now += 10_000  # nothing to read for hours: still live
    assert liveness(heartbeat, 60)["status"] == "ok"
    heartbeat.batch_started()
    clock.now += 59
    assert liveness(heartbeat, 60)["status"] == "ok"
    clock.now += 2
    body = liveness(heartbeat, 60)
    assert body["status"] == "down" and "in hand 61s" in body["reason"]
    heartbeat.batch_done()
    assert liveness(heartbeat, 60) == {"batch_in_hand_s": 0.0, "batches_done": 1, "status": "ok"}


def test_ready_needs_partitions_and_dependencies() -> None:
    heartbeat, _ = beat()
    body = readiness(heartbeat=heartbeat, assigned=[], lag={}, dependencies=OK, stall_s=60)
    assert body["status"] == "down" and "no partitions assigned" in body["reasons"][0]
    down = {**OK, "clickhouse": {"status": "down", "error": "refused"}}
    body = readiness(heartbeat=heartbeat, assigned=["t[0]"], lag={}, dependencies=down, stall_s=60)
    assert body["reasons"] == ["clickhouse is down"]
    body = readiness(heartbeat=heartbeat, assigned=["t[0]"], lag={}, dependencies=OK, stall_s=60)
    assert body["status"] == "ok" and body["reasons"] == []


def test_lag_without_finished_batches_is_a_stall() -> None:
    heartbeat, clock = beat()
    behind = {0: ConsumerLag(seconds=90.0, messages=40), 1: ConsumerLag(seconds=0.0, messages=0)}
    heartbeat.partitions_assigned()
    clock.now += 30
    assert not stalled(heartbeat, behind, 60)  # a fresh assignment gets stall_s
    clock.now += 31
    assert stalled(heartbeat, behind, 60)
    body = readiness(
        heartbeat=heartbeat, assigned=["t[0]"], lag=behind, dependencies=OK, stall_s=60
    )
    assert body["status"] == "down" and "40 messages behind" in body["reasons"][0]
    assert body["lag_messages"] == {"0": 40, "1": 0}
    heartbeat.batch_started()
    heartbeat.batch_done()  # batches move again
    assert not stalled(heartbeat, behind, 60)
    clock.now += 3600
    assert not stalled(heartbeat, {0: ConsumerLag(seconds=0.0, messages=0)}, 60)  # no lag: idle
