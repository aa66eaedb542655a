"""The local services start, answer, and stop; the CLI records and stops what it started."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from clickhouse_driver import Client
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from stream.kafka import create_topics
from stream.local import cli as local_cli
from stream.local.clickhouse_server import ClickHouseServer
from stream.local.processes import free_ports, pid_alive, stop_orphans
from stream.local.tansu import TansuBroker


@pytest.mark.broker
def test_tansu_fixture_round_trips_a_message(tansu: str) -> None:
    topic = "local-roundtrip"
    create_topics(tansu, [topic], partitions=3)
    create_topics(tansu, [topic], partitions=3)  # idempotent
    metadata = AdminClient({"bootstrap.servers": tansu}).list_topics(timeout=5)
    assert len(metadata.topics[topic].partitions) == 3

    producer = Producer({"bootstrap.servers": tansu})
    producer.produce(topic, key=b"k", value=b"hello")
    assert producer.flush(10) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": tansu,
            "group.id": "local-rt",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,  # Tansu joins take about half of it (defect C)
        }
    )
    consumer.subscribe([topic])
    try:
        message = None
        for _ in range(100):
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                break
        assert message is not None and message.value() == b"hello"
    finally:
        consumer.close()


@pytest.mark.clickhouse
def test_clickhouse_fixture_is_18_16_in_utc(clickhouse_server: ClickHouseServer) -> None:
    client = Client(host=clickhouse_server.host, port=clickhouse_server.port)
    try:
        version, tz = client.execute("SELECT version(), timezone()")[0]
    finally:
        client.disconnect()
    assert version.startswith("18.16")
    assert tz.endswith("UTC")
    assert Path(clickhouse_server.root, "data").is_dir()


@pytest.mark.broker
def test_broker_stops_and_frees_its_port(tmp_path: Path) -> None:
    with TansuBroker(log_path=tmp_path / "t.log") as broker:
        assert broker.process is not None and broker.process.poll() is None
    assert broker.process.returncode is not None


@pytest.mark.broker
@pytest.mark.clickhouse
def test_up_and_down_record_and_stop_services(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    kafka_port, ch_port = free_ports(2)
    parser = argparse.ArgumentParser()
    local_cli.register(parser.add_subparsers())
    common = ["--run-dir", str(run_dir)]
    broker = ["--kafka-broker", f"127.0.0.1:{kafka_port}"]
    up = parser.parse_args(
        ["up", "--with-clickhouse-server", *common, *broker, "--clickhouse-port", str(ch_port)]
    )
    try:
        assert up.func(up) == 0
        state = json.loads((run_dir / "services.json").read_text())
        assert state["tansu"]["bootstrap"] == f"127.0.0.1:{kafka_port}"
        assert state["clickhouse"]["port"] == ch_port
        assert all(pid_alive(s["pid"]) for s in state.values())
        assert f"127.0.0.1:{kafka_port}" in capsys.readouterr().out
        # A second `up` reuses what runs instead of failing on busy ports.
        assert up.func(up) == 0
        assert json.loads((run_dir / "services.json").read_text()) == state
    finally:
        down = parser.parse_args(["down", *common])
        assert down.func(down) == 0
    assert not any(pid_alive(s["pid"]) for s in state.values())
    assert not (run_dir / "services.json").exists()


def test_missing_server_binary_says_how_to_install(monkeypatch, tmp_path: Path) -> None:
    import stream.local.clickhouse_server as module

    monkeypatch.setattr(module.shutil, "which", lambda name: None)
    try:
        ClickHouseServer(tmp_path).start()
    except FileNotFoundError as exc:
        assert "apt-get install -y clickhouse-server" in str(exc)
    else:
        raise AssertionError("expected FileNotFoundError")


@pytest.mark.broker
def test_services_of_a_killed_owner_are_stopped_but_live_owners_are_left_alone(
    tmp_path: Path,
) -> None:
    owned = tmp_path / "owned"
    script = (
        "import sys, time; from pathlib import Path; from stream.local.tansu import TansuBroker; "
        f"b = TansuBroker(owner_dir=Path({str(owned)!r})).start(); "
        "print(b.pid, flush=True); time.sleep(120)"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        broker_pid = int(owner.stdout.readline())
        assert stop_orphans(owned) == []  # owner alive: not ours to stop
        assert pid_alive(broker_pid)
    finally:
        owner.kill()
        owner.wait()
    assert pid_alive(broker_pid)  # the kill -9 left the broker running
    stopped = stop_orphans(owned)
    assert len(stopped) == 1 and str(broker_pid) in stopped[0]
    assert not pid_alive(broker_pid)
    assert list(owned.iterdir()) == []


def test_ports_picked_together_are_distinct_and_free() -> None:
    """A cluster picks 13 ports before anything listens on them; one at a time the kernel
    can repeat a port (about 1 cluster in 140), and the second node then finds it taken."""
    ports = free_ports(200)
    assert len(set(ports)) == 200
    assert all(1024 < port < 65536 for port in ports)
