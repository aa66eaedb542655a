"""One writer process per chdb directory, enforced with an ``flock`` on a file inside it.

chdb keeps its database in a plain directory with no server in front of it, so two processes
opening the same directory would both write to it unchecked. Each worker (and every other
command on the embedded backend) therefore takes an exclusive ``flock`` on
``<directory>/.reviewpulse-writer.lock`` for as long as it has the directory open. The kernel
drops the lock when the holder exits in any way, ``kill -9`` included, so a stale lock file
never blocks the next start; its content (the holder's PID and command) only serves the error
message.

An ``flock`` belongs to one open file description, so a second ``open`` in the same process
would block its own holder. Sessions of one process on one directory are fine for chdb, so the
locks this process holds are counted in a process-wide table (the lock is process state by
nature, like chdb's one directory per process).
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = ".reviewpulse-writer.lock"


class DirectoryInUse(RuntimeError):
    """Another process holds the chdb directory."""

    def __init__(self, directory: Path, holder: str) -> None:
        self.directory = directory
        self.holder = holder
        super().__init__(
            f"chdb directory {directory} is in use by another process ({holder}). The embedded "
            "backend allows one process per directory: stop that process first, or use a "
            "ClickHouse server (REVIEWPULSE_CLICKHOUSE_BACKEND=native). Scale-out, i.e. more "
            "than one worker, needs the server backend."
        )


@dataclass
class _Held:
    fd: int
    count: int


_held: dict[Path, _Held] = {}
_table = threading.Lock()


def acquire(directory: Path) -> Path:
    """Take (or share, within this process) the writer lock of ``directory``; returns the
    resolved directory to pass to :func:`release`. Raises :class:`DirectoryInUse`."""
    directory = Path(directory).resolve()
    with _table:
        held = _held.get(directory)
        if held is not None:
            held.count += 1
            return directory
        path = directory / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise DirectoryInUse(directory, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv)}\n".encode(), 0)
        _held[directory] = _Held(fd, 1)
        return directory


def release(directory: Path) -> None:
    """Drop one hold of ``directory``'s lock; the last one unlocks it. The file stays, so a
    process waiting to open it never locks an unlinked inode."""
    with _table:
        held = _held.get(directory)
        if held is None:
            return
        held.count -= 1
        if held.count == 0:
            del _held[directory]
            os.close(held.fd)  # closing the only descriptor releases the flock


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 512, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown"
