"""Run Debian's ZooKeeper (``apt-get install zookeeper``, 3.8) as a plain process in a scratch
directory on a loopback port: the coordination service a replicated ClickHouse needs. Not the
system service: its data, config and log stay under ``root``."""

from __future__ import annotations

import socket
from pathlib import Path

from stream.local.processes import LocalService, free_port, port_open

JAVA_LIB = Path("/usr/share/java")
INSTALL_HINT = (
    "ZooKeeper not found in /usr/share/java. Install it with: apt-get install -y zookeeper "
    "(or run bash deploy/local/setup.sh --cluster)"
)


def classpath() -> str:
    """Every jar Debian's zookeeper package and its dependencies put in /usr/share/java."""
    if not (JAVA_LIB / "zookeeper.jar").exists():
        raise FileNotFoundError(INSTALL_HINT)
    return ":".join(str(jar) for jar in sorted(JAVA_LIB.glob("*.jar")))


def serving(host: str, port: int) -> bool:
    """ZooKeeper's four-letter ``srvr`` (whitelisted in the config) names the server's mode:
    it serves sessions. ``ruok`` is not enough: it answers ``imok`` while the server still
    closes every session ("ZooKeeperServer not running"), and a clickhouse-server 18.16 that
    gets DDL ``ON CLUSTER`` then can crash (a NULL ZooKeeper session)."""
    with socket.create_connection((host, port), timeout=1) as sock:
        sock.sendall(b"srvr")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    return b"Mode: standalone" in reply


class ZooKeeper(LocalService):
    """A standalone ZooKeeper server whose data lives in ``root``."""

    service = "zookeeper"

    def __init__(
        self,
        root: Path,
        *,
        port: int | None = None,
        detach: bool = False,
        owner_dir: Path | None = None,
        ready_timeout_s: float = 60.0,
    ) -> None:
        super().__init__(detach=detach, owner_dir=owner_dir, ready_timeout_s=ready_timeout_s)
        self.root = Path(root).resolve()
        self.port = port or free_port()

    def write_config(self) -> Path:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        config = self.root / "zoo.cfg"
        config.write_text(
            "\n".join(
                [
                    "tickTime=500",
                    "initLimit=10",
                    "syncLimit=5",
                    f"dataDir={self.root / 'data'}",
                    f"clientPort={self.port}",
                    f"clientPortAddress={self.host}",
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=ruok,mntr,srvr",
                    "maxClientCnxns=200",
                    "",
                ]
            )
        )
        return config

    def start(self) -> ZooKeeper:
        if port_open(self.port, self.host):
            raise RuntimeError(f"port {self.port} is already in use")
        config = self.write_config()
        self._spawn(
            [
                "java",
                "-Xmx256m",
                f"-Dzookeeper.log.dir={self.root}",
                "-cp",
                classpath(),
                # the service name in the command line lets stop_pid recognise the process
                f"-Dreviewpulse.service={self.service}",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                str(config),
            ],
            log_path=self.root / "zookeeper.log",
            cwd=self.root,
        )
        self._await_ready(
            lambda: serving(self.host, self.port),
            what=f"ZooKeeper on {self.host}:{self.port}",
            log_hint=f"See {self.root / 'zookeeper.log'}.",
        )
        return self
