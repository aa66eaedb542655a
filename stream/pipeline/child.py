"""One spawned child process that does one kind of a batch's work off the worker's GIL.

A :class:`Child` is a one-process pool (spawned, never forked: the worker has threads) whose
initializer prepares the child once. A child that dies (a crash, the OOM killer) breaks its
pool: the call that had it in hand raises the owner's ``died`` error after a new child was
started in its place, so the batch's retry (``retry.Retrying``) runs it again there; a child
that keeps dying exhausts the retries and stops the worker without acking, as a sink that
stays down does. Every child leaves by itself when the worker dies without closing it.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Child:
    """The one child process named ``name``, started by :meth:`start`, replaced when it dies
    (``restarted`` is called with each replacement), stopped by :meth:`close`.
    ``initializer(*initargs)`` runs first in each child; it should call
    :func:`exit_with_parent`. ``died`` is the error a call raises when its child died."""

    def __init__(
        self,
        name: str,
        initializer: Callable[..., None],
        initargs: tuple[Any, ...],
        *,
        died: type[RuntimeError],
        restarted: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.initializer = initializer
        self.initargs = initargs
        self.died = died
        self.restarted = restarted
        self.pid: int | None = None  # the current child's, once it is ready
        self._pool: ProcessPoolExecutor | None = None
        self._first: tuple[Callable[..., Any], tuple[Any, ...]] | None = None
        self._lock = threading.Lock()  # start, restart and close may come from other threads
        self._closed = False

    def start(self, first: Callable[..., Any] | None = None, *args: Any) -> Future:
        """Launch a child (if none runs) and return a future done once it is ready (its
        result: the child's pid), or failed if its initializer (or ``first``) failed.
        ``first(*args)``, if given, is the first job of this child and of each one started
        in its place (a model to load, say)."""
        if first is not None:
            self._first = (first, args)
        pool = self._running()
        job = self._first
        ready = pool.submit(_ready, *(job if job else (None, ())))
        ready.add_done_callback(self._note_pid)
        return ready

    async def run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the child; if the child dies meanwhile, a new one is started and
        ``died`` is raised (``what`` names the work it had in hand)."""
        pool = self._running()
        try:
            return await asyncio.wrap_future(pool.submit(fn, *args))
        except BrokenProcessPool as exc:
            dead = self.pid
            self._replace(pool, dead)
            raise self.died(
                f"the {self.name} process (pid {dead}) died with {what} in hand: {exc}; "
                "a new one is starting"
            ) from exc

    def _running(self) -> ProcessPoolExecutor:
        """The pool of the child; a new one if there is none (the child is spawned at its
        first job, its initializer runs before it)."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self.name} process is closed")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=self.initializer,
                    initargs=self.initargs,
                )
            return self._pool

    def _replace(self, broken: ProcessPoolExecutor, dead: int | None) -> None:
        """Start a new child in place of ``broken`` (once, whoever notices first)."""
        with self._lock:
            if self._pool is not broken or self._closed:
                return
            self._pool = None
            self.pid = None
        broken.shutdown(wait=False, cancel_futures=True)
        log.error("the %s process (pid %s) died; starting a new one", self.name, dead)
        self.restarted()
        self.start()

    def _note_pid(self, ready: Future) -> None:
        if not ready.cancelled() and ready.exception() is None:
            self.pid = ready.result()

    def close(self) -> None:
        """Stop the child (after the job it has in hand, if any) and wait for it."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _ready(first: Callable[..., Any] | None, args: tuple[Any, ...]) -> int:
    """In the child: its first job, if any; then its pid."""
    if first is not None:
        first(*args)
    return os.getpid()


def exit_with_parent() -> None:
    """In a child: leave as soon as the worker is gone, even when it was killed and never
    shut the pool down: a watcher thread waits on the parent's sentinel (a pipe that closes
    with it)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
