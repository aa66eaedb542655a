"""The worker's start-up work, done beside Faust's start and its group join.

Joining the consumer group takes seconds (Tansu: half the session timeout; Kafka: the
broker's initial rebalance delay, 3 s by default) and needs none of the model, jieba or
ClickHouse. So the worker starts Faust at once and prepares each resource on the one thread
that uses it: the model on the loader thread (and again in the model's child process,
``model-process``, launched first with the directory the registry names), jieba on the keywords
thread (or in the keywords child process, which starts first too: it has an interpreter of its
own), ClickHouse (connect, then migrate or check) on the ClickHouse thread. A one-thread
executor runs its jobs in order, so anything sent to that thread later runs after the
preparation.

The review agent awaits :meth:`Startup.wait` before it takes a batch, ``/health/ready`` says
"starting" until every part is done, and a part that fails stops the worker (exit code 1)
with the reason; nothing has been taken from the topic by then, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from stream.config import ClickHouseConfig
from stream.keywords import Keywords, ReviewTerms
from stream.pipeline.exits import Stop, hard_stop
from stream.sink.backend import ClickHouse
from stream.sink.proxies import LazyClickHouse

log = logging.getLogger(__name__)

Step = tuple[str, Executor, Callable[[], Any]]  # name, the resource's thread, its work

EXIT_STARTUP_FAILED = 1  # a resource could not be prepared: nothing was taken yet


@dataclass
class Part:
    """One start-up job: its future and, once done, its wall seconds."""

    future: Future
    seconds: float | None = None


@dataclass
class Startup:
    """The start-up parts in progress. With no parts (a context built whole), it is done."""

    stop: Stop = hard_stop
    parts: dict[str, Part] = field(default_factory=dict)
    clock: Callable[[], float] = time.perf_counter

    def begin(self, *steps: Step) -> None:
        """Run ``steps`` (name, executor, work) one after another, each on its executor: the
        thread of the resource it prepares. One at a time, because they hold the GIL most
        of the time, and Faust's start, which decides when the group join begins, needs it
        too; together they still finish well within the join."""
        for name, _, _ in steps:
            self.parts[name] = Part(Future())
        self._run_next(list(steps))

    def watch(self, name: str, future: Future) -> None:
        """A part that runs elsewhere (the keywords child process loading jieba): done when
        ``future`` is."""
        part = self.parts[name] = Part(future)
        started = self.clock()

        def finished(_: Future) -> None:
            part.seconds = self.clock() - started

        future.add_done_callback(finished)

    def _run_next(self, steps: list[Step]) -> None:
        if not steps:
            return
        (name, executor, work), rest = steps[0], steps[1:]
        part = self.parts[name]

        def run() -> None:
            if not part.future.set_running_or_notify_cancel():
                return
            started = self.clock()
            try:
                result = work()
            except BaseException as exc:  # a part's failure is reported, never lost
                part.seconds = self.clock() - started
                part.future.set_exception(exc)
            else:
                part.seconds = self.clock() - started
                part.future.set_result(result)
            self._run_next(rest)

        try:
            executor.submit(run)
        except RuntimeError:  # the worker closed before its start-up finished
            for name, _, _ in steps:
                self.parts[name].future.cancel()

    @property
    def done(self) -> bool:
        """Every part finished without error."""
        return all(_succeeded(part.future) for part in self.parts.values())

    async def wait(self) -> None:
        """Return once every part is done; when one fails, stop the worker with its reason.
        Safe to await from several tasks: the first to see a failure stops the process."""
        for name, part in self.parts.items():
            try:
                await asyncio.wrap_future(part.future)
            except Exception as exc:
                self.stop(EXIT_STARTUP_FAILED, f"start-up failed: {name}: {exc}")

    def status(self) -> dict[str, Any]:
        """For ``/health`` and ``/health/ready``: ok, starting or down, and each part."""
        states = {name: _state(part) for name, part in self.parts.items()}
        kinds = {kind for kind, _ in states.values()}
        status = "down" if "failed" in kinds else "starting" if "starting" in kinds else "ok"
        return {"status": status, "parts": {name: text for name, (_, text) in states.items()}}

    def __str__(self) -> str:
        return ", ".join(
            f"{name} {part.seconds:.2f}s" if part.seconds is not None else f"{name} pending"
            for name, part in self.parts.items()
        )


def _succeeded(future: Future) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def _state(part: Part) -> tuple[str, str]:
    """(kind, text) of a part: starting, ok or failed."""
    if not part.future.done():
        return "starting", "starting"
    if _succeeded(part.future):
        return "ok", f"ok in {part.seconds or 0.0:.2f}s"
    error = "cancelled" if part.future.cancelled() else repr(part.future.exception())
    return "failed", f"failed: {error}"[:300]


class PreparedKeywords:
    """:class:`stream.keywords.Keywords`, built on first use on the keywords thread: the
    start-up job calls :meth:`prepare` there first, so a batch never waits for jieba to
    load unless it came before that job finished."""

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self._keywords: Keywords | None = None

    def prepare(self) -> Keywords:
        if self._keywords is None:
            self._keywords = Keywords.load(limit=self.limit)
        return self._keywords

    def extract(self, clean_text: str) -> ReviewTerms:
        return self.prepare().extract(clean_text)


class PreparedClickHouse(LazyClickHouse):
    """The worker's ClickHouse connection, opened on first use (by the start-up job, on the
    ClickHouse thread). Its database and cluster come from the configuration, so the
    handles built on it while Faust starts do not connect on the wrong thread."""

    def __init__(self, config: ClickHouseConfig, factory: Callable[[], ClickHouse]) -> None:
        super().__init__(factory)
        self._database = config.clickhouse_database
        self._cluster = config.clickhouse_cluster if config.clickhouse_backend == "native" else ""

    @property
    def database(self) -> str:
        return self._database

    @property
    def cluster(self) -> str:
        return self._cluster
