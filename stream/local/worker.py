"""``reviewpulse worker`` as a child process, for the demo, the tests and the benchmarks.

Dev tooling: the child gets its whole configuration through ``REVIEWPULSE_*`` variables
(``WorkerConfig.env``), and the parent talks to it over its HTTP pages.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from stream.config import PROJECT_ROOT, WorkerConfig
from stream.local.clickhouse_server import ClickHouseServer
from stream.local.processes import Started, free_port, stop_process


def scratch_config(
    prefix: str,
    *,
    bootstrap: str,
    data_dir: Path,
    clickhouse: ClickHouseServer | None = None,
    **overrides: Any,
) -> WorkerConfig:
    """A worker configuration of its own, for one benchmark run: topics, consumer group and
    database named with a fresh token, short group timeouts (Tansu defect C), a free web port,
    and ``clickhouse`` (native) or a chdb directory under ``data_dir`` (embedded). Flat
    ``overrides`` win."""
    token = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "kafka_broker": bootstrap,
        "input_topic": f"{prefix}.created.{token}",
        "output_topic": f"{prefix}.sentiment.{token}",
        "dlq_topic": f"{prefix}.dlq.{token}",
        "alerts_topic": f"{prefix}.alerts.{token}",
        "app_id": f"{prefix}-{token}",
        "worker_data_dir": data_dir / "worker",
        "session_timeout_s": 6.0,
        "batch_within_s": 0.2,
        "clickhouse_backend": "embedded" if clickhouse is None else "native",
        "clickhouse_database": f"{prefix}_{token}",
        "chdb_path": data_dir / f"chdb-{token}",
        "web_port": free_port(),
    }
    if clickhouse is not None:
        values["clickhouse_host"] = clickhouse.host
        values["clickhouse_port"] = clickhouse.port
    return WorkerConfig.resolve(**{**values, **overrides})


class WorkerExited(RuntimeError):
    """The worker process ended while something was being waited for."""


class WorkerProcess(Started):
    """``python -m stream.cli worker`` with ``config``, logging to ``log_path``. As a context
    manager it starts the worker and stops it (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, config: WorkerConfig, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> Self:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "worker"],
                cwd=PROJECT_ROOT,
                env=self.config.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def base_url(self) -> str:
        return f"http://{self.config.web.web_host}:{self.config.web.web_port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def get(self, path: str, timeout_s: float = 5.0) -> bytes | None:
        """The body of a GET, or None when the worker does not answer (yet)."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout_s) as response:
                return response.read()
        except (urllib.error.URLError, OSError):
            return None

    def get_json(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def post_json(self, path: str, body: Any) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url(path), data=json.dumps(body).encode(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.url("/metrics"), timeout=5) as response:
            return response.read().decode()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        assert self.process is not None
        stop_process(self.process, grace_s=30)
        return self.process.returncode

    def wait_exit(self, timeout_s: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    worker: WorkerProcess | None = None,
    interval_s: float = 0.5,
) -> None:
    """Poll ``condition`` until it holds; raise :class:`WorkerExited` if ``worker`` ends
    meanwhile and ``TimeoutError`` after ``timeout_s``, both with the worker's log tail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if worker is not None and not worker.alive():
            assert worker.process is not None
            raise WorkerExited(
                f"worker exited ({worker.process.returncode}) while waiting for {what}; "
                f"its log {worker.log_path} ends with:\n{worker.log_tail()}"
            )
        time.sleep(interval_s)
    tail = worker.log_tail() if worker else ""
    raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}\n{tail}")
