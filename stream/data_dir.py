"""One worker process per data directory.

The worker keeps two small files beside Faust's data of its app id: the in-flight marker
(``stream.pipeline.poison``) and the dead-letter window (``stream.pipeline.dlq_state``). Both
describe *this* process's batches, and the next process started on the same directory reads
them as its predecessor's. Two live workers on one directory would overwrite each other's
marker, so a crash would be blamed on the other worker's messages, and each would clear the
other's. So a worker holds an exclusive lock on its directory for as long as it lives; the
kernel drops the lock when the process ends, ``kill -9`` included, so a restart never finds a
stale one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_NAME = "reviewpulse-worker.lock"


class DataDirInUse(RuntimeError):
    """Another live process holds the directory."""


class DataDirLock:
    """The exclusive hold on one worker data directory, through the open lock file: released
    by :meth:`release`, by the process ending, or when this object is garbage-collected, so
    keep a reference for as long as the worker runs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock, or raise :class:`DataDirInUse` naming the holder's pid."""
        self.directory.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")  # not truncated: the holder's pid stays readable
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise DataDirInUse(
                f"worker data directory {self.directory} is in use by another worker "
                f"(pid {holder}); give each worker its own --worker-data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None
