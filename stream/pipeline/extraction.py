"""Where a batch's keywords are extracted (jieba + the complaint lexicon): on a thread of the
worker, or in a child process of its own (``keywords-executor``).

Extraction holds the GIL throughout (jieba-rs does not release it, and the keyword
selection and complaint search are Python): about 35 µs per review on a thread of the worker,
time the event loop and the model's lexical half spend waiting. In a child process it runs
beside them on its own interpreter. Either way it is one executor for one resource: a
one-thread pool, or a one-process pool (spawned, never forked: the worker has threads) whose
initializer builds the :class:`~stream.keywords.Keywords` once. Both hand back the same
:class:`~stream.keywords.ReviewTerms` and the CPU seconds the extraction took where it ran
(the ``segment`` stage).

A child that dies (a crash, the OOM killer) breaks its pool: :class:`KeywordsProcess` starts
a new one and raises :class:`KeywordsProcessDied`, so the batch's retry
(``retry.Retrying``) runs it again on the new child; a child that keeps dying exhausts the
retries and stops the worker without acking, as a sink that stays down does.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from stream.keywords import Keywords, ReviewTerms

log = logging.getLogger(__name__)

Extracted = tuple[list[ReviewTerms], float]
"""The terms of each text, in order, and the CPU seconds spent on them."""


class TermsExtractor(Protocol):
    """Has ``extract(clean_text) -> ReviewTerms``: :class:`~stream.keywords.Keywords` or
    ``stream.startup.PreparedKeywords``."""

    def extract(self, clean_text: str) -> ReviewTerms: ...


def extract_batch(keywords: TermsExtractor, texts: Sequence[str]) -> Extracted:
    """Each text's terms and the calling thread's CPU seconds spent on them."""
    started = time.thread_time()
    terms = [keywords.extract(text) for text in texts]
    return terms, time.thread_time() - started


class KeywordsOnThread:
    """``keywords`` used only on ``executor``'s one thread of this process; :meth:`close`
    shuts the executor down."""

    def __init__(self, keywords: TermsExtractor, executor: Executor) -> None:
        self.keywords = keywords
        self.executor = executor

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    async def __call__(self, texts: Sequence[str]) -> Extracted:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, extract_batch, self.keywords, texts)


class KeywordsProcessDied(RuntimeError):
    """The keywords child died with a batch in hand; a new one is starting (retry it)."""


class KeywordsProcess:
    """Keyword extraction in one spawned child process. :meth:`start` launches it and loads
    jieba there (the worker calls it while it joins the consumer group); :meth:`close` stops
    it. ``restarted`` is called with each replacement of a child that died."""

    def __init__(self, *, limit: int, restarted: Callable[[], None] = lambda: None) -> None:
        self.limit = limit
        self.restarted = restarted
        self.pid: int | None = None  # the current child's, once it is ready
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # start, restart and close may come from other threads
        self._closed = False

    def start(self) -> Future:
        """Launch a child (if none runs) and return a future done once jieba is loaded there
        (its result: the child's pid), or failed if the child could not load it."""
        ready = self._running().submit(os.getpid)
        ready.add_done_callback(self._note_pid)
        return ready

    def _running(self) -> ProcessPoolExecutor:
        """The pool of the child; a new one if there is none (the child is spawned at its
        first job, its initializer runs before it)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the keywords process is closed")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_load_in_child,
                    initargs=(self.limit,),
                )
            return self._pool

    async def __call__(self, texts: Sequence[str]) -> Extracted:
        pool = self._running()
        try:
            return await asyncio.wrap_future(pool.submit(_extract_in_child, list(texts)))
        except BrokenProcessPool as exc:
            died = self.pid
            self._replace(pool, died)
            raise KeywordsProcessDied(
                f"the keywords process (pid {died}) died with a batch of {len(texts)} in hand: "
                f"{exc}; a new one is starting"
            ) from exc

    def _replace(self, broken: ProcessPoolExecutor, died: int | None) -> None:
        """Start a new child in place of ``broken`` (once, whoever notices first)."""
        with self._lock:
            if self._pool is not broken or self._closed:
                return
            self._pool = None
            self.pid = None
        broken.shutdown(wait=False, cancel_futures=True)
        log.error("the keywords process (pid %s) died; starting a new one", died)
        self.restarted()
        self.start()

    def _note_pid(self, ready: Future) -> None:
        if not ready.cancelled() and ready.exception() is None:
            self.pid = ready.result()

    def close(self) -> None:
        """Stop the child (after the batch it has in hand, if any) and wait for it."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


KeywordsExtraction = KeywordsOnThread | KeywordsProcess
"""Where the worker extracts a batch's keywords (``keywords-executor``):
calling it extracts a batch, ``close()`` stops it (jieba is loaded at start-up:
``WorkerContext.prepare``)."""


# --- in the child process ----------------------------------------------------------------

_child_keywords: list[Keywords] = []
"""The child's one :class:`Keywords`, built by its initializer; empty in the worker itself (a
process pool's initializer can leave state only at module level)."""


def _load_in_child(limit: int) -> None:
    _exit_with_parent()
    _child_keywords.append(Keywords.load(limit=limit))


def _extract_in_child(texts: list[str]) -> Extracted:
    return extract_batch(_child_keywords[0], texts)


def _exit_with_parent() -> None:
    """Leave as soon as the worker is gone, even when it was killed and never shut the pool
    down: a watcher thread waits on the parent's sentinel (a pipe that closes with it)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
