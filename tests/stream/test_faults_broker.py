"""The fault suite's broker rows, smaller: the broker (Tansu on moto's S3 server) restarts in
the middle of a stream, gracefully or with SIGKILL, under two workers.

Tansu 0.6.0 itself can lose records it acknowledged to an idempotent producer across a restart
(``bench.broker_restart``, a control with no ReviewPulse code, and ARCHITECTURE.md "Rules"),
so these tests do not ask for zero loss. They ask that the worker lost nothing the broker kept:
every event missing from ClickHouse or the DLQ is missing from the input topic too, nothing is
counted twice, and the group recovered."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import Row, Services, parse_args, run_fault, services_for
from stream.local.clickhouse_server import ClickHouseServer
from stream.local.s3 import INSTALL_HINT, s3_server_available
from stream.local.tansu import TansuBroker

pytestmark = [
    pytest.mark.broker,
    pytest.mark.clickhouse,
    pytest.mark.slow,
    pytest.mark.skipif(not s3_server_available(), reason=INSTALL_HINT),
]


@pytest.mark.parametrize("fault", ["broker_restart", "broker_kill9"])
def test_the_worker_loses_nothing_the_broker_kept(
    tansu_broker: TansuBroker, clickhouse_server: ClickHouseServer, tmp_path: Path, fault: str
) -> None:
    args = parse_args(["--events", "2000", "--rate", "200", "--workers", "2"])
    shared = Services(tansu_broker, clickhouse_server, tmp_path)
    with services_for(fault, args, shared) as services:
        assert services.broker is not tansu_broker  # a durable broker of its own
        row: Row = run_fault(fault, services, args, seed=201)
    assert not row.failed, row.failed
    assert row.valid > 0 and row.malformed > 0
    assert row.recovery_s is not None
    assert row.details["broker_stop_s"] >= 0
    missing = row.lost + (row.malformed - row.dead_letters_right)
    assert row.details["missing_outputs"] == missing
    assert row.details["missing_not_in_input_topic"] == missing, row.notes  # none by the worker
    assert (row.double_counted, row.aggregates_short) == (0, 0), row.notes
    assert row.stored == row.valid - row.lost
