"""Small helpers shared by the local services: free ports, readiness polling, stopping."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that nothing listens on right now. Every
    socket stays bound until all are picked: picked one at a time, the kernel may hand out
    the same port twice (13 picks in a row repeat one in about 1 run of 140)."""
    with contextlib.ExitStack() as bound:
        sockets = [
            bound.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            for _ in range(count)
        ]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    process: subprocess.Popen | None = None,
    log_hint: str = "",
) -> None:
    """Poll ``ready`` until it returns True; fail early if ``process`` exits meanwhile."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}. {log_hint}")
        try:
            if ready():
                return
        except Exception:  # not ready yet: keep polling until the deadline
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f}s. {log_hint}")


def stop_process(process: subprocess.Popen, *, grace_s: float = 10.0) -> None:
    """SIGTERM, wait ``grace_s``, then SIGKILL. Safe on a process that already exited."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace_s)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs. Reaps it first if it is our own exited child (a zombie)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def command_line(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop_pid(pid: int, *, expect: str = "", grace_s: float = 10.0) -> bool:
    """Stop a process we started earlier (from a PID file). True if it was running.

    ``expect`` must occur in the process's command line, so a recycled PID is left alone.
    """
    if not pid_alive(pid) or expect not in command_line(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def record_owned_pid(directory: Path, service: str, pid: int) -> Path:
    """Write ``<service>-<owner pid>.pid`` holding ``pid``: a service this process owns.

    If the owner dies without stopping it (a killed test run), ``stop_orphans`` finds it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{service}-{os.getpid()}.pid"
    path.write_text(f"{pid}\n")
    return path


def stop_orphans(directory: Path) -> list[str]:
    """Stop services recorded by ``record_owned_pid`` whose owner process is gone.

    Services of owners still running (another test session sharing the checkout) are left
    alone. Returns a line per service stopped.
    """
    stopped = []
    if not directory.is_dir():
        return stopped
    for path in sorted(directory.glob("*-*.pid")):
        service, _, owner = path.stem.rpartition("-")
        if not owner.isdigit() or int(owner) == os.getpid() or pid_alive(int(owner)):
            continue
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            pid = 0
        if pid and stop_pid(pid, expect=service, grace_s=10.0):
            stopped.append(f"{service} (pid {pid}, owner {owner} gone)")
        path.unlink(missing_ok=True)
    return stopped


class Started(ABC):
    """Something that runs between ``start()`` and ``stop()``; as a context manager it is
    started on entry and stopped on exit, whatever happened in between."""

    @abstractmethod
    def start(self) -> Self:
        """Start it and return it once it is usable."""

    @abstractmethod
    def stop(self) -> object:
        """Stop it (safe when it is already stopped); some report how it ended."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LocalService(Started):
    """The lifecycle the local services share: spawn a subprocess with its output in a log
    file, wait until it answers, record it for orphan clean-up, stop it. Use as a context
    manager, or ``start()``/``stop()``.

    ``detach=True`` puts the process in its own session so it outlives the starting process
    (``reviewpulse up``); stop it later by PID.
    """

    service = "service"  # names its owner PID file, and must occur in its command line
    stop_grace_s = 10.0

    def __init__(self, *, detach: bool, owner_dir: Path | None, ready_timeout_s: float) -> None:
        self.host = "127.0.0.1"
        self.detach = detach
        self.owner_dir = owner_dir
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen | None = None
        self._pid_file: Path | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @abstractmethod
    def start(self) -> Self:
        """Spawn the process (``_spawn``) and wait for it (``_await_ready``)."""

    def _spawn(
        self,
        command: Sequence[str],
        *,
        log_path: Path | None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = log_path.open("ab")
        else:
            log = subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.detach,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()

    def _await_ready(self, ready: Callable[[], bool], *, what: str, log_hint: str) -> None:
        """Wait for ``ready``; on failure stop the process, so nothing is left running."""
        try:
            wait_until(
                ready,
                timeout_s=self.ready_timeout_s,
                what=what,
                process=self.process,
                log_hint=log_hint,
            )
        except BaseException:
            self.stop()
            raise
        if self.owner_dir is not None and self.process is not None:
            self._pid_file = record_owned_pid(self.owner_dir, self.service, self.process.pid)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace_s=self.stop_grace_s)
        if self._pid_file is not None:
            self._pid_file.unlink(missing_ok=True)
