"""Shared fixtures: a real Tansu broker and a real clickhouse-server, started once per session.

Both services run on free loopback ports with scratch directories and are stopped at the end of
the session, so plain ``pytest`` works on any machine with ``clickhouse-server`` installed
(``bash deploy/local/setup.sh``). Every test gets its own database, topic names and app id
from ``make_config``, so tests never share state.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.local.cli import OWNED_DIR_NAME, RUN_DIR
from stream.local.clickhouse_server import ClickHouseServer
from stream.local.processes import stop_orphans
from stream.local.tansu import TansuBroker
from stream.config import WorkerConfig

# Services started here record their PIDs, so a killed test run leaves nothing behind for
# long: the next session, `reviewpulse down` or .ci/run's exit trap stops them.
OWNED_DIR = RUN_DIR / OWNED_DIR_NAME


@pytest.fixture(scope="session", autouse=True)
def _stop_services_of_dead_test_runs() -> None:
    stop_orphans(OWNED_DIR)


@pytest.fixture(scope="session")
def tansu_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """The running broker object (for tests that need to create topics or restart it)."""
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with TansuBroker(log_path=log, owner_dir=OWNED_DIR) as broker:
        yield broker


@pytest.fixture(scope="session")
def tansu(tansu_broker: TansuBroker) -> str:
    """Bootstrap address ``127.0.0.1:PORT`` of the session's Tansu broker."""
    return tansu_broker.bootstrap


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    """The session's clickhouse-server 18.16; has ``host``, ``port``, ``http_port``."""
    root = tmp_path_factory.mktemp("clickhouse")
    with ClickHouseServer(root, owner_dir=OWNED_DIR) as server:
        yield server


@pytest.fixture
def chdb_path(tmp_path: Path) -> Path:
    """A fresh directory for an embedded chdb database (one process may hold one at a time)."""
    path = tmp_path / "chdb"
    path.mkdir()
    return path


@pytest.fixture
def make_config(
    tansu: str, clickhouse_server: ClickHouseServer, chdb_path: Path
) -> Callable[..., WorkerConfig]:
    """Build a ``WorkerConfig`` pointing at the session's services, unique to this test.

    Defaults: native backend on the test server, a fresh database, topic names and app id
    suffixed with a per-test token, short consumer-group timeouts (Tansu defect C).
    Flat keyword overrides win, e.g. ``make_config(clickhouse_backend="embedded")``; each
    section is then ``config.kafka``, ``config.clickhouse``, ...
    """
    token = uuid.uuid4().hex[:10]

    def build(**overrides: Any) -> WorkerConfig:
        values: dict[str, Any] = {
            "kafka_broker": tansu,
            "input_topic": f"review.created.{token}",
            "output_topic": f"review.sentiment.{token}",
            "dlq_topic": f"review.dead-letter.{token}",
            "alerts_topic": f"review.alerts.{token}",
            "app_id": f"reviewpulse-test-{token}",
            "session_timeout_s": 6.0,
            "heartbeat_interval_s": 1.0,
            "clickhouse_backend": "native",
            "clickhouse_host": clickhouse_server.host,
            "clickhouse_port": clickhouse_server.port,
            "clickhouse_database": f"test_{token}",
            "clickhouse_timeout_s": 30.0,
            "chdb_path": chdb_path,
            "worker_data_dir": chdb_path.parent / "worker",
        }
        values.update(overrides)
        return WorkerConfig.resolve(**values)

    return build
