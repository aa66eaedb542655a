"""Several ``reviewpulse worker`` processes in one consumer group, supervised the way an
orchestrator would (``restart: always``): a member that exits is started again after a short
delay unless it was retired. For the fault suite and the scale-out tests.

Each member has its own web port and Faust data directory and shares everything else
(topics, group, ClickHouse). The supervisor also samples each member's peak RSS.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from stream.config import WorkerConfig
from stream.local.processes import Started, free_port
from stream.local.worker import WorkerProcess


@dataclass
class Member:
    """One worker slot of the fleet; ``worker`` is replaced on every restart."""

    name: str
    config: WorkerConfig
    worker: WorkerProcess
    retired: bool = False
    exits: list[int] = field(default_factory=list)
    starts: int = 1

    @property
    def pid(self) -> int | None:
        process = self.worker.process
        return process.pid if process is not None and process.poll() is None else None


@dataclass(frozen=True)
class ExitRecord:
    member: str
    code: int
    at_s: float  # monotonic


class WorkerFleet(Started):
    """``size`` workers on ``config``'s group, logging to ``log_dir/<name>.log``."""

    def __init__(
        self,
        config: WorkerConfig,
        log_dir: Path,
        *,
        size: int = 2,
        restart_delay_s: float = 1.0,
        sample_interval_s: float = 0.25,
    ) -> None:
        self.config = config
        self.log_dir = Path(log_dir)
        self.size = size
        self.restart_delay_s = restart_delay_s
        self.sample_interval_s = sample_interval_s
        self.members: list[Member] = []
        self.exit_log: list[ExitRecord] = []
        self.peak_rss_bytes = 0
        self._recorded: set[int] = set()  # PIDs whose exit is in exit_log
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(self.size):
            self.add()
        self._supervisor = threading.Thread(target=self._supervise, name="fleet", daemon=True)
        self._supervisor.start()
        return self

    def add(self) -> Member:
        """A new member joins the group (a rebalance follows)."""
        with self._lock:
            name = f"worker-{len(self.members) + 1}"
            config = self.config.replace(
                web_port=free_port(), worker_data_dir=self.log_dir / name / "faust"
            )
            member = Member(name, config, WorkerProcess(config, self.log_dir / f"{name}.log"))
            member.worker.start()
            self.members.append(member)
            return member

    def stop(self) -> None:
        """Retire every member (SIGTERM, then SIGKILL after the worker's grace)."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)
        for member in list(self.members):
            self.retire(member)

    # faults --------------------------------------------------------------------------------

    def retire(self, member: Member) -> int | None:
        """Stop ``member`` for good (it leaves the group; a rebalance follows)."""
        with self._lock:
            member.retired = True
        process = member.worker.process
        if process is None:
            return None
        code = member.worker.stop()
        self._record_exit(member, code, process.pid)
        return code

    def kill9(self, member: Member) -> None:
        """SIGKILL; the supervisor starts the member again."""
        if member.worker.alive():
            member.worker.kill9()

    def terminate(self, member: Member) -> None:
        """SIGTERM without waiting; the worker's exit code says whether a batch was in hand
        (75) or not (0), and the supervisor starts it again."""
        if member.worker.alive() and member.worker.process is not None:
            member.worker.process.send_signal(signal.SIGTERM)

    def pause(self, member: Member, seconds: float) -> None:
        """SIGSTOP for ``seconds``, then SIGCONT: input piles up for it meanwhile (keep it well
        under the session timeout, or the group moves its partitions away)."""
        process = member.worker.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            process.send_signal(signal.SIGCONT)

    def wait_answering(self, timeout_s: float = 180.0) -> None:
        """Until every member's /metrics answers: its model is loaded, ClickHouse is open and
        Faust runs (the group join follows within about half the session timeout)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self.counters(m) for m in self.members if not m.retired):
                return
            time.sleep(0.5)
        raise TimeoutError(f"not every worker answered within {timeout_s:.0f}s")

    def live(self) -> list[Member]:
        return [m for m in self.members if not m.retired and m.worker.alive()]

    @property
    def restarts(self) -> int:
        return sum(member.starts - 1 for member in self.members)

    def counters(self, member: Member) -> dict[str, float]:
        """The member's event counters from /metrics: consumed, processed, dead_lettered
        (empty when it does not answer). Read line by line: polled every few ms."""
        try:
            text = member.worker.metrics_text()
        except OSError:
            return {}
        values = dict.fromkeys(("consumed", "processed", "dead_lettered"), 0.0)
        for line in text.splitlines():
            if not line.startswith("reviewpulse_events_"):
                continue
            name, _, value = line.rpartition(" ")
            kind = name.removeprefix("reviewpulse_events_").partition("_total")[0]
            if kind in values and "_total" in name:
                values[kind] += float(value)
        return values

    def in_batch(self, member: Member) -> bool:
        """True while ``member`` has consumed events that are not yet processed or
        dead-lettered: a batch is in hand."""
        values = self.counters(member)
        return bool(values) and values["consumed"] > values["processed"] + values["dead_lettered"]

    # supervisor ----------------------------------------------------------------------------

    def _supervise(self) -> None:
        exited_at: dict[str, float] = {}
        while not self._stopping.is_set():
            with self._lock:
                for member in self.members:
                    self._sample_rss(member)
                    process = member.worker.process
                    if member.retired or process is None or process.poll() is None:
                        continue
                    if member.name not in exited_at:
                        exited_at[member.name] = time.monotonic()
                        self._record_exit(member, process.returncode, process.pid)
                    elif time.monotonic() - exited_at[member.name] >= self.restart_delay_s:
                        del exited_at[member.name]
                        member.worker = WorkerProcess(member.config, member.worker.log_path)
                        member.worker.start()
                        member.starts += 1
            self._stopping.wait(self.sample_interval_s)

    def _record_exit(self, member: Member, code: int, pid: int) -> None:
        with self._lock:
            if pid in self._recorded:
                return
            self._recorded.add(pid)
            member.exits.append(code)
            self.exit_log.append(ExitRecord(member.name, code, time.monotonic()))

    def _sample_rss(self, member: Member) -> None:
        pid = member.pid
        if pid is None:
            return
        peak = _status_kib(pid, "VmHWM:")
        if peak:
            self.peak_rss_bytes = max(self.peak_rss_bytes, peak * 1024)


def _status_kib(pid: int, key: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
