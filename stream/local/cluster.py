"""A replicated, sharded ClickHouse on one machine: ZooKeeper plus ``shards × replicas``
``clickhouse-server`` 18.16 processes on loopback ports, each with the cluster's
``remote_servers``, its own ``{shard}``/``{replica}`` macros and distributed DDL. For the
cluster tests and ``reviewpulse up --cluster``; deploy/kubernetes/clickhouse has the same
settings for a real cluster."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self

from stream.local.clickhouse_server import ClickHouseServer
from stream.local.processes import Started, free_ports, wait_until
from stream.local.zookeeper import ZooKeeper

CLUSTER_NAME = "reviewpulse"


@dataclass(frozen=True)
class NodePorts:
    shard: int  # 1-based
    replica: int  # 1-based
    tcp_port: int
    http_port: int
    interserver_port: int

    @property
    def name(self) -> str:
        return f"s{self.shard}r{self.replica}"


def remote_servers_xml(cluster: str, nodes: list[NodePorts]) -> str:
    """``internal_replication``: a Distributed insert writes one replica per shard, and the
    replicated table copies it to the others (writing every replica would double the rows)."""
    shards = []
    for shard in sorted({n.shard for n in nodes}):
        replicas = "".join(
            f"<replica><host>127.0.0.1</host><port>{n.tcp_port}</port></replica>"
            for n in nodes
            if n.shard == shard
        )
        shards.append(f"<shard><internal_replication>true</internal_replication>{replicas}</shard>")
    return f"<remote_servers><{cluster}>{''.join(shards)}</{cluster}></remote_servers>"


def node_config_xml(cluster: str, node: NodePorts, nodes: list[NodePorts], zk_port: int) -> str:
    return f"""    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>{node.interserver_port}</interserver_http_port>
    <zookeeper>
        <node><host>127.0.0.1</host><port>{zk_port}</port></node>
        <session_timeout_ms>10000</session_timeout_ms>
    </zookeeper>
    <macros>
        <cluster>{cluster}</cluster>
        <shard>{node.shard:02d}</shard>
        <replica>{node.name}</replica>
    </macros>
    {remote_servers_xml(cluster, nodes)}
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
"""


def has_zookeeper_session(host: str, port: int) -> bool:
    """The node reads ZooKeeper: it can serve replicated tables and DDL ``ON CLUSTER``."""
    from clickhouse_driver import Client

    client = Client(host=host, port=port, connect_timeout=1, send_receive_timeout=5)
    try:
        rows = client.execute("SELECT count() FROM system.zookeeper WHERE path = '/'")
        return rows[0][0] > 0
    finally:
        client.disconnect()


class LocalCluster(Started):
    """Start ZooKeeper, then every node; ``stop_node``/``start_node`` take one down and back
    (replica-loss tests). Use as a context manager (:class:`Started`)."""

    def __init__(
        self,
        root: Path,
        *,
        shards: int = 2,
        replicas: int = 2,
        cluster: str = CLUSTER_NAME,
        owner_dir: Path | None = None,
        detach: bool = False,
    ) -> None:
        self.root = Path(root).resolve()
        self.cluster = cluster
        self.owner_dir = owner_dir
        self.detach = detach
        ports = iter(free_ports(1 + 3 * shards * replicas))
        self.zookeeper = ZooKeeper(
            self.root / "zookeeper", port=next(ports), owner_dir=owner_dir, detach=detach
        )
        self.layout = [
            NodePorts(shard, replica, next(ports), next(ports), next(ports))
            for shard in range(1, shards + 1)
            for replica in range(1, replicas + 1)
        ]
        self.nodes: dict[str, ClickHouseServer] = {}

    def _server(self, node: NodePorts) -> ClickHouseServer:
        return ClickHouseServer(
            self.root / node.name,
            tcp_port=node.tcp_port,
            http_port=node.http_port,
            owner_dir=self.owner_dir,
            detach=self.detach,
            ready_timeout_s=60.0,
            extra_config=node_config_xml(self.cluster, node, self.layout, self.zookeeper.port),
        )

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        """The first node's native port: where a client (the worker, migrations) connects."""
        return self.layout[0].tcp_port

    def start(self) -> Self:
        try:
            self.zookeeper.start()
            for node in self.layout:
                self.nodes[node.name] = self._server(node).start()
            for node in self.layout:
                self._await_session(node)
        except BaseException:
            self.stop()
            raise
        return self

    def _await_session(self, node: NodePorts) -> None:
        """A node answers before its ZooKeeper session is up; replicated DDL sent to it
        meanwhile fails, or on 18.16 can crash it."""
        wait_until(
            lambda: has_zookeeper_session(self.host, node.tcp_port),
            timeout_s=60.0,
            what=f"the ZooKeeper session of {node.name}",
            process=self.nodes[node.name].process,
            log_hint=f"See {self.nodes[node.name].log_path}.",
        )

    def stop_node(self, name: str) -> None:
        self.nodes[name].stop()

    def start_node(self, name: str) -> ClickHouseServer:
        (node,) = [n for n in self.layout if n.name == name]
        self.nodes[name] = self._server(node).start()
        self._await_session(node)
        return self.nodes[name]

    def stop(self) -> None:
        for server in self.nodes.values():
            server.stop()
        self.zookeeper.stop()
