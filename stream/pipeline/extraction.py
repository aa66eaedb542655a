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

A child that dies (a crash, the OOM killer) is replaced and its batch retried
(``stream.pipeline.child``): :class:`KeywordsProcess` raises :class:`KeywordsProcessDied`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Protocol

from stream.keywords import Keywords, ReviewTerms
from stream.pipeline.child import Child, exit_with_parent

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
    """Keyword extraction in one spawned child process (``stream.pipeline.child``).
    :meth:`start` launches it and loads jieba there (the worker calls it while it joins the
    consumer group); :meth:`close` stops it. ``restarted`` is called with each replacement
    of a child that died."""

    def __init__(self, *, limit: int, restarted: Callable[[], None] = lambda: None) -> None:
        self.limit = limit
        self._child = Child(
            "keywords", _load_in_child, (limit,), died=KeywordsProcessDied, restarted=restarted
        )

    @property
    def pid(self) -> int | None:
        """The current child's, once it is ready."""
        return self._child.pid

    def start(self) -> Future:
        """Launch a child (if none runs) and return a future done once jieba is loaded there
        (its result: the child's pid), or failed if the child could not load it."""
        return self._child.start()

    async def __call__(self, texts: Sequence[str]) -> Extracted:
        return await self._child.run(f"a batch of {len(texts)}", _extract_in_child, list(texts))

    def close(self) -> None:
        """Stop the child (after the batch it has in hand, if any) and wait for it."""
        self._child.close()


KeywordsExtraction = KeywordsOnThread | KeywordsProcess
"""Where the worker extracts a batch's keywords (``keywords-executor``):
calling it extracts a batch, ``close()`` stops it (jieba is loaded at start-up:
``WorkerContext.prepare``)."""


# --- in the child process ----------------------------------------------------------------

_child_keywords: list[Keywords] = []
"""The child's one :class:`Keywords`, built by its initializer; empty in the worker itself (a
process pool's initializer can leave state only at module level)."""


def _load_in_child(limit: int) -> None:
    exit_with_parent()
    _child_keywords.append(Keywords.load(limit=limit))


def _extract_in_child(texts: list[str]) -> Extracted:
    return extract_batch(_child_keywords[0], texts)
