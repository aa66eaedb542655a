"""Run Debian's ``clickhouse-server`` (18.16) in a scratch directory on loopback ports.

The config written here is the smallest one 18.16 accepts: loopback only, data and logs under
the scratch directory, the ``default`` user without a password, and a short
``old_parts_lifetime`` so dropped partitions do not come back after a quick restart.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from xml.sax.saxutils import escape

from stream.local.processes import LocalService, free_ports, port_open

INSTALL_HINT = (
    "clickhouse-server not found on PATH. Install it with: "
    "apt-get update && apt-get install -y clickhouse-server clickhouse-client "
    "(or run bash deploy/local/setup.sh)"
)


def server_binary() -> str:
    for candidate in ("clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse"):
        found = shutil.which(candidate)
        if found:
            return found
    raise FileNotFoundError(INSTALL_HINT)


def render_config(
    root: Path, tcp_port: int, http_port: int, extra_config: str = ""
) -> tuple[str, str]:
    """(config.xml, users.xml) text for a server that keeps everything under ``root``.
    ``extra_config``: more top-level elements (a cluster node's ZooKeeper, macros, ...)."""
    r = escape(str(root))
    config = f"""<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{r}/log/clickhouse-server.log</log>
        <errorlog>{r}/log/clickhouse-server.err.log</errorlog>
        <size>10M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <path>{r}/data/</path>
    <tmp_path>{r}/tmp/</tmp_path>
    <user_files_path>{r}/user_files/</user_files_path>
    <format_schema_path>{r}/format_schemas/</format_schema_path>
    <users_config>{r}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <mlock_executable>false</mlock_executable>
    <merge_tree>
        <old_parts_lifetime>5</old_parts_lifetime>
    </merge_tree>
{extra_config}</yandex>
"""
    users = """<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"""
    return config, users


def server_ready(host: str, port: int) -> bool:
    from clickhouse_driver import Client

    client = Client(host=host, port=port, connect_timeout=1, send_receive_timeout=2)
    try:
        return client.execute("SELECT 1") == [(1,)]
    finally:
        client.disconnect()


class ClickHouseServer(LocalService):
    """A clickhouse-server subprocess whose data lives in ``root`` (see :class:`LocalService`
    for the lifecycle)."""

    service = "clickhouse"
    stop_grace_s = 15.0

    def __init__(
        self,
        root: Path,
        *,
        tcp_port: int | None = None,
        http_port: int | None = None,
        detach: bool = False,
        owner_dir: Path | None = None,
        ready_timeout_s: float = 30.0,
        extra_config: str = "",
    ) -> None:
        super().__init__(detach=detach, owner_dir=owner_dir, ready_timeout_s=ready_timeout_s)
        self.root = Path(root).resolve()
        picked = iter(free_ports(2))
        self.port = tcp_port or next(picked)
        self.http_port = http_port or next(picked)
        self.extra_config = extra_config

    @property
    def config_path(self) -> Path:
        return self.root / "config.xml"

    @property
    def log_path(self) -> Path:
        return self.root / "log" / "clickhouse-server.err.log"

    def write_config(self) -> Path:
        for sub in ("data", "tmp", "user_files", "format_schemas", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        config, users = render_config(self.root, self.port, self.http_port, self.extra_config)
        self.config_path.write_text(config)
        (self.root / "users.xml").write_text(users)
        return self.config_path

    def start(self) -> ClickHouseServer:
        binary = server_binary()
        for port in (self.port, self.http_port):
            if port_open(port, self.host):
                raise RuntimeError(f"port {port} is already in use")
        self.write_config()
        self._spawn(
            [binary, f"--config-file={self.config_path}"],
            log_path=self.root / "log" / "stdout.log",
            cwd=self.root,
        )
        self._await_ready(
            lambda: port_open(self.port, self.host) and server_ready(self.host, self.port),
            what=f"clickhouse-server on {self.host}:{self.port}",
            log_hint=f"See {self.log_path}.",
        )
        return self
