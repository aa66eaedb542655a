"""Shared fixtures: a real Tansu broker and a real clickhouse-server, started once per session.

Both services run on free loopback ports with scratch directories and are stopped at the end of
the session, so plain ``pytest`` works on any machine with ``clickhouse-server`` installed
(``bash deploy/local/setup.sh``). Every test gets its own database, topic names and app id
from ``make_config``, so tests never share state.

A test that talks to a service is marked ``broker`` and/or ``clickhouse`` (so
``pytest -m "not broker and not clickhouse"`` is the fast unit suite). The marks are enforced:
a test that uses a service fixture without its mark fails, and an unmarked test that opens a
network connection or an embedded ClickHouse fails (``_connections_only_when_marked``).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import chdb.session
import pytest

from stream.config import WorkerConfig
from stream.local.cli import OWNED_DIR_NAME, RUN_DIR
from stream.local.clickhouse_server import ClickHouseServer
from stream.local.cluster import LocalCluster
from stream.local.processes import stop_orphans
from stream.local.tansu import TansuBroker

# Services started here record their PIDs, so a killed test run leaves nothing behind for
# long: the next session, `reviewpulse down` or .ci/run's exit trap stops them.
OWNED_DIR = RUN_DIR / OWNED_DIR_NAME


# Fixtures that start or open a service, and the mark a test using them must carry.
SERVICE_FIXTURES: dict[str, str] = {
    "tansu_broker": "broker",
    "tansu": "broker",
    "clickhouse_server": "clickhouse",
    "chdb_path": "clickhouse",
    "clickhouse_cluster": "cluster",
}
SERVICE_MARKS = frozenset(SERVICE_FIXTURES.values())


class UnmarkedConnection(AssertionError):
    """An unmarked test tried to reach a service."""


@pytest.fixture(scope="session", autouse=True)
def _stop_services_of_dead_test_runs() -> None:
    stop_orphans(OWNED_DIR)


@pytest.fixture(autouse=True)
def _connections_only_when_marked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Service fixtures need their mark; an unmarked test may open no connection."""
    marks = {mark.name for mark in request.node.iter_markers()} & SERVICE_MARKS
    needed = {mark for fixture, mark in SERVICE_FIXTURES.items() if fixture in request.fixturenames}
    if needed - marks:
        pytest.fail(
            f"{request.node.nodeid} uses service fixtures but is not marked "
            f"{sorted(needed - marks)}: add pytest.mark.<name> (see tests/conftest.py)"
        )
    if marks:
        return

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise UnmarkedConnection(
            f"{request.node.nodeid} opens a connection but is not marked broker or clickhouse"
        )

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(chdb.session, "Session", refuse)


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


@pytest.fixture(scope="session")
def clickhouse_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """ZooKeeper and four clickhouse-server 18.16 nodes (2 shards x 2 replicas) in the
    ``reviewpulse`` cluster; ``port`` is the first node's."""
    with LocalCluster(tmp_path_factory.mktemp("cluster"), owner_dir=OWNED_DIR) as cluster:
        yield cluster


@pytest.fixture
def chdb_path(tmp_path: Path) -> Path:
    """A fresh directory for an embedded chdb database (one process may hold one at a time)."""
    path = tmp_path / "chdb"
    path.mkdir()
    return path


@pytest.fixture
def make_config(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., WorkerConfig]:
    """Build a ``WorkerConfig`` pointing at the session's services, unique to this test.

    Defaults: native backend on the test server, a fresh database, topic names and app id
    suffixed with a per-test token, short consumer-group timeouts (Tansu defect C). Only the
    services of the test's marks are started: an unmarked service's address is left at its
    default. Flat keyword overrides win, e.g. ``make_config(clickhouse_backend="embedded")``;
    each section is then ``config.kafka``, ``config.clickhouse``, ...
    """
    token = uuid.uuid4().hex[:10]
    marks = {mark.name for mark in request.node.iter_markers()}
    values: dict[str, Any] = {
        "input_topic": f"review.created.{token}",
        "output_topic": f"review.sentiment.{token}",
        "dlq_topic": f"review.dead-letter.{token}",
        "alerts_topic": f"review.alerts.{token}",
        "app_id": f"reviewpulse-test-{token}",
        "session_timeout_s": 6.0,
        "heartbeat_interval_s": 1.0,
        "worker_data_dir": tmp_path / "worker",
        "clickhouse_backend": "native",
        "clickhouse_database": f"test_{token}",
        "clickhouse_timeout_s": 30.0,
    }
    if "broker" in marks:
        values["kafka_broker"] = request.getfixturevalue("tansu")
    if "clickhouse" in marks:
        server: ClickHouseServer = request.getfixturevalue("clickhouse_server")
        values["clickhouse_host"] = server.host
        values["clickhouse_port"] = server.port
        values["chdb_path"] = request.getfixturevalue("chdb_path")
    if "cluster" in marks:  # the cluster wins over the single server
        cluster: LocalCluster = request.getfixturevalue("clickhouse_cluster")
        values["clickhouse_host"] = cluster.host
        values["clickhouse_port"] = cluster.port
        values["clickhouse_cluster"] = cluster.cluster

    def build(**overrides: Any) -> WorkerConfig:
        return WorkerConfig.resolve(**{**values, **overrides})

    return build
