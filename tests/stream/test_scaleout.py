"""Scale-out on the real broker and the clickhouse-server backend: a supervised fleet of
workers in one group (``stream.local.fleet``) through a rebalance and a SIGTERM in the middle
of a batch, with nothing lost and nothing counted twice. These are ``bench.faults`` rows at a
smaller size; the suite itself (every fault, 20k events) is ``python -m bench.faults``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import Row, Services, parse_args, run_fault
from stream.local.clickhouse_server import ClickHouseServer
from stream.local.tansu import TansuBroker

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse, pytest.mark.slow]


def small(events: int, rate: float) -> list[str]:
    return ["--events", str(events), "--rate", str(rate), "--workers", "2", "--partitions", "6"]


def assert_exact(row: Row) -> None:
    """The fault suite's target: every valid review stored once and counted once in the
    aggregates, every bad event dead-lettered with the reason it was made for."""
    assert not row.failed, row.failed
    assert row.valid > 0 and row.malformed > 0
    assert (row.stored, row.lost) == (row.valid, 0), row.notes
    assert (row.double_counted, row.aggregates_short) == (0, 0), row.notes
    assert row.dead_letters_right == row.malformed, row.notes


def test_a_third_worker_joins_and_leaves(
    tansu_broker: TansuBroker, clickhouse_server: ClickHouseServer, tmp_path: Path
) -> None:
    services = Services(tansu_broker, clickhouse_server, tmp_path)
    row = run_fault("join_leave", services, parse_args(small(2400, 50)), seed=101)
    assert row.details["third_consumed"] > 0  # it was given partitions, then gave them back
    assert row.recovery_s is not None
    assert_exact(row)


def test_sigterm_in_the_middle_of_a_batch(
    tansu_broker: TansuBroker, clickhouse_server: ClickHouseServer, tmp_path: Path
) -> None:
    services = Services(tansu_broker, clickhouse_server, tmp_path)
    row = run_fault("sigterm", services, parse_args(small(1500, 75)), seed=102)
    assert row.details["signalled_in_batch"]
    # Faust waits for the batch in hand and exits 0, or the batch is cancelled (75, not
    # acked, re-read by the group): either way nothing is lost or counted twice.
    assert row.details["sigterm_exit"] in (0, 75)
    assert row.restarts >= 1  # the supervisor started it again
    assert_exact(row)
