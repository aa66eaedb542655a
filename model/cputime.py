"""Thread CPU time by stage, summed over the threads that did the work.

``time.thread_time`` is read in the thread that runs a stage (about 0.5 µs a reading), so a
stage's figure is what that thread spent, not wall time; work a library hands to threads of
its own (a Rust or C pool it starts) is not in it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class ThreadCpu:
    """Seconds of thread CPU time by stage name; ``add`` and ``stage`` may be called from any
    thread."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Charge the calling thread's CPU time inside the block to ``name``."""
        started = time.thread_time()
        try:
            yield
        finally:
            self.add(name, time.thread_time() - started)
