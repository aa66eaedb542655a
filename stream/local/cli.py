"""``reviewpulse up`` / ``reviewpulse down``: local broker (and ClickHouse server) for dev use.

What ``up`` starts is recorded in ``.run/services.json`` at the repository root, so ``down``
(or ``.ci/run``'s exit trap) can stop it later by PID.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from stream.config import PROJECT_ROOT, ClickHouseConfig, KafkaConfig, add_config_arguments, resolve

RUN_DIR = PROJECT_ROOT / ".run"
# Services started by test fixtures record themselves here (see processes.record_owned_pid).
OWNED_DIR_NAME = "owned"


def state_path(run_dir: Path) -> Path:
    return run_dir / "services.json"


def read_state(run_dir: Path) -> dict[str, dict[str, Any]]:
    path = state_path(run_dir)
    return json.loads(path.read_text()) if path.exists() else {}


def write_state(run_dir: Path, state: dict[str, dict[str, Any]]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_path(run_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(state_path(run_dir))


def broker_port(bootstrap: str) -> int:
    first = bootstrap.split(",")[0]
    return int(first.rsplit(":", 1)[1])


def cmd_up(args: argparse.Namespace) -> int:
    from stream.kafka import create_topics
    from stream.local.clickhouse_server import ClickHouseServer
    from stream.local.processes import command_line, pid_alive
    from stream.local.tansu import TansuBroker

    kafka, clickhouse = resolve(KafkaConfig, args), resolve(ClickHouseConfig, args)
    run_dir = Path(args.run_dir)
    state = {
        name: service
        for name, service in read_state(run_dir).items()
        if pid_alive(service["pid"]) and name.split("-")[0] in command_line(service["pid"])
    }

    if "tansu" not in state:
        broker = TansuBroker(
            broker_port(kafka.kafka_broker), log_path=run_dir / "tansu.log", detach=True
        ).start()
        state["tansu"] = {"pid": broker.pid, "bootstrap": broker.bootstrap}
        write_state(run_dir, state)
    topics = kafka.topics
    create_topics(state["tansu"]["bootstrap"], topics, kafka.topic_partitions)

    if args.with_clickhouse_server and "clickhouse" not in state:
        server = ClickHouseServer(
            run_dir / "clickhouse", tcp_port=clickhouse.clickhouse_port, detach=True
        ).start()
        state["clickhouse"] = {
            "pid": server.pid,
            "host": server.host,
            "port": server.port,
            "http_port": server.http_port,
            "root": str(server.root),
        }
        write_state(run_dir, state)

    if args.cluster and "zookeeper" not in state:
        from stream.local.cluster import LocalCluster

        cluster = LocalCluster(run_dir / "cluster", detach=True).start()
        state["zookeeper"] = {"pid": cluster.zookeeper.pid, "port": cluster.zookeeper.port}
        for name, server in cluster.nodes.items():
            state[f"clickhouse-{name}"] = {
                "pid": server.pid,
                "host": server.host,
                "port": server.port,
                "http_port": server.http_port,
                "root": str(server.root),
                "cluster": cluster.cluster,
            }
        write_state(run_dir, state)

    tansu = state["tansu"]
    print(f"Tansu broker      pid {tansu['pid']:>7}  {tansu['bootstrap']}")
    print(f"  topics: {', '.join(topics)}")
    if "clickhouse" in state:
        ch = state["clickhouse"]
        print(
            f"clickhouse-server pid {ch['pid']:>7}  native {ch['host']}:{ch['port']}  "
            f"http {ch['http_port']}  data {ch['root']}"
        )
        print("  use it with: REVIEWPULSE_CLICKHOUSE_BACKEND=native")
    nodes = {name: s for name, s in state.items() if name.startswith("clickhouse-")}
    if nodes:
        zookeeper = state["zookeeper"]
        print(f"ZooKeeper         pid {zookeeper['pid']:>7}  port {zookeeper['port']}")
        for name, node in nodes.items():
            print(f"{name:<17} pid {node['pid']:>7}  native {node['host']}:{node['port']}")
        first = next(iter(nodes.values()))
        print(
            "  use it with: REVIEWPULSE_CLICKHOUSE_BACKEND=native "
            f"REVIEWPULSE_CLICKHOUSE_PORT={first['port']} "
            f"REVIEWPULSE_CLICKHOUSE_CLUSTER={first['cluster']}"
        )
    if "clickhouse" not in state and not nodes:
        print(f"ClickHouse: embedded chdb at {clickhouse.chdb_path} (no server needed)")
    print(f"Stop with: reviewpulse down   (state in {state_path(run_dir)})")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from stream.local.processes import stop_orphans, stop_pid

    run_dir = Path(args.run_dir)
    for line in stop_orphans(run_dir / OWNED_DIR_NAME):
        print(f"stopped leftover {line}")
    state = read_state(run_dir)
    if not state:
        print("nothing recorded by 'up' is running")
    for name, service in state.items():
        expect = name.split("-")[0]  # tansu, clickhouse or zookeeper
        stopped = stop_pid(int(service["pid"]), expect=expect, grace_s=15.0)
        print(f"{name}: {'stopped' if stopped else 'was not running'} (pid {service['pid']})")
    state_path(run_dir).unlink(missing_ok=True)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    up = subparsers.add_parser(
        "up",
        help="start a local Tansu broker (and optionally clickhouse-server) in the background",
        description="Start a local Tansu broker on the port of --kafka-broker and create the "
        "app's topics. With --with-clickhouse-server, also start Debian's clickhouse-server on "
        "--clickhouse-port with its data under .run/clickhouse. Already running services are "
        "reused.",
    )
    up.add_argument(
        "--with-clickhouse-server",
        action="store_true",
        help="also start clickhouse-server (for --clickhouse-backend native)",
    )
    up.add_argument(
        "--cluster",
        action="store_true",
        help="also start a replicated, sharded ClickHouse: ZooKeeper and 2 shards x 2 replicas "
        "of clickhouse-server, data under .run/cluster (for --clickhouse-cluster reviewpulse)",
    )
    up.add_argument("--run-dir", default=str(RUN_DIR), help="where PIDs and logs are kept")
    add_config_arguments(up, KafkaConfig, ClickHouseConfig)
    up.set_defaults(func=cmd_up)

    down = subparsers.add_parser(
        "down",
        help="stop what 'reviewpulse up' started",
        description="Stop what 'reviewpulse up' started, and services left behind by test "
        "runs that died (those of test runs still going are left alone).",
    )
    down.add_argument("--run-dir", default=str(RUN_DIR), help="where PIDs and logs are kept")
    down.set_defaults(func=cmd_down)


def main(argv: list[str] | None = None) -> int:
    """``python -m stream.local.cli up|down``: works even if other command modules break."""
    parser = argparse.ArgumentParser(prog="python -m stream.local.cli")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
