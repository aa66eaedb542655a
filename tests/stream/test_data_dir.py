"""One worker process per data directory (stream.data_dir): a second holder is refused with
the first one's pid, the lock goes with its process (kill -9 included), and a worker started
on a directory another worker holds stops at once, before it touches the broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stream.config import PROJECT_ROOT, WorkerConfig
from stream.data_dir import DataDirInUse, DataDirLock
from stream.startup import EXIT_STARTUP_FAILED

HOLD = """
import sys, time
from pathlib import Path
from stream.data_dir import DataDirLock
lock = DataDirLock(Path(sys.argv[1])).acquire()  # held while referenced
print("held", flush=True)
time.sleep(600)
"""


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path / "app").acquire()
    with pytest.raises(DataDirInUse, match=rf"in use by another worker \(pid {os.getpid()}\)"):
        DataDirLock(tmp_path / "app").acquire()
    first.release()
    DataDirLock(tmp_path / "app").acquire().release()  # free again once released


def test_the_lock_goes_with_a_killed_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "app")],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline().strip()
        assert line == "held", holder.stderr.read() if holder.stderr else line
        with pytest.raises(DataDirInUse, match=rf"pid {holder.pid}\)"):
            DataDirLock(tmp_path / "app").acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        DataDirLock(tmp_path / "app").acquire().release()  # no stale lock after kill -9
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_worker_on_a_held_directory_stops_before_it_starts(tmp_path: Path) -> None:
    # The broker address is unreachable on purpose: the refusal comes before any connection.
    config = WorkerConfig.resolve(
        worker_data_dir=tmp_path / "worker", app_id="held-app", kafka_broker="127.0.0.1:9"
    )
    held = DataDirLock(tmp_path / "worker" / "held-app").acquire()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "stream.cli", "worker"],
            cwd=PROJECT_ROOT,
            env=config.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        held.release()
    assert run.returncode == EXIT_STARTUP_FAILED
    assert f"is in use by another worker (pid {os.getpid()})" in run.stderr
