"""Hot reload on a real registry: the watcher (loader thread) and the reloader (event loop)."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from model.registry import set_current, start_shadow, stop_shadow
from stream.config import ModelConfig, ServingConfig
from stream.heap import HeapFreezer
from stream.metrics import Metrics
from stream.serving.holder import ModelHolder
from stream.serving.loader import load_checked
from stream.serving.reload import RegistryWatcher, Reloader, model_info
from stream.serving.shadow import ShadowRunner
from tests.stream.serving.registry import NAME, publish_broken, publish_copy


class Journal:
    def __init__(self) -> None:
        self.rows: list = []

    def write_shadow(self, rows) -> int:
        self.rows.extend(rows)
        return len(rows)


class Harness:
    """A holder serving v1, its reloader, and the threads each load ran on."""

    def __init__(self, registry: Path, *, version: str = "current") -> None:
        self.model_config = ModelConfig(
            model_registry=registry, model_name=NAME, model_version=version
        )
        serving = ServingConfig()
        self.metrics = Metrics()
        self.loads: list[tuple[str, str]] = []

        def load(version: str, threads: int):
            self.loads.append((version, threading.current_thread().name))
            return load_checked(self.model_config, version, tolerance=0.25, threads=threads)

        first = load_checked(self.model_config, version, tolerance=0.25)
        self.metrics.model_info.info(model_info(NAME, first))  # as WorkerContext.open does
        self.holder = ModelHolder(first, follows_current=version == "current")
        self.shadow = ShadowRunner(Journal(), self.metrics, queue_batches=2, timeout_s=5)
        self.loader = ThreadPoolExecutor(1, thread_name_prefix="model-loader")
        self.heap = HeapFreezer()
        self.reloader = Reloader(
            self.holder,
            RegistryWatcher(self.model_config, serving, loader=load),
            self.loader,
            self.metrics,
            model_name=NAME,
            shadow=self.shadow,
            heap=self.heap,
        )

    def poll(self):
        return asyncio.run(self.reloader.poll())

    def metric(self, role: str, outcome: str) -> float:
        return self.metrics.model_reloads.labels(role, outcome)._value.get()

    def info_version(self) -> str:
        (sample,) = self.metrics.model_info.collect()[0].samples
        return sample.labels["version"]

    def close(self) -> None:
        self.shadow.close()
        self.loader.shutdown()
        gc.unfreeze()


@pytest.fixture
def harness(registry: Path):
    h = Harness(registry)
    yield h
    h.close()


def test_a_moved_current_is_loaded_on_the_loader_thread_and_swapped_in(
    registry: Path, harness: Harness
) -> None:
    assert harness.poll().served.in_sync and harness.loads == []
    publish_copy(registry, "v2", make_current=True)
    old = harness.holder.current
    harness.poll()
    assert harness.holder.current.version == "v2" and harness.holder.current is not old
    assert harness.loads == [("v2", "model-loader_0")]
    assert harness.metric("served", "loaded") == 1
    assert harness.info_version() == "v2"  # reviewpulse_model follows the served version
    status = harness.holder.status()
    assert (status["version"], status["follows"], status["reloads"]) == ("v2", "current", 1)
    harness.poll()
    assert len(harness.loads) == 1  # in sync: nothing loaded again


@pytest.mark.parametrize("how", ["truncated", "missing"])
def test_a_broken_version_is_refused_once_and_the_old_model_keeps_serving(
    registry: Path, harness: Harness, how: str
) -> None:
    publish_broken(registry, "v2", how=how)
    set_current(registry, NAME, "v2")
    harness.poll()
    assert harness.holder.current.version == "v1"
    refused = harness.holder.status()["refused"]
    assert refused["version"] == "v2" and "cannot load" in refused["reason"]
    assert harness.metric("served", "refused") == 1
    assert harness.info_version() == "v1"
    harness.poll()  # unchanged since: not tried again, not counted again
    assert harness.metric("served", "refused") == 1 and len(harness.loads) == 1
    publish_broken(registry, "v4", how=how)
    set_current(registry, NAME, "v4")
    harness.poll()
    assert harness.holder.refused.version == "v4" and harness.metric("served", "refused") == 2
    set_current(registry, NAME, "v2")  # back to the first broken one: shown, not retried
    harness.poll()
    assert harness.holder.refused.version == "v2" and harness.metric("served", "refused") == 2
    assert [version for version, _ in harness.loads] == ["v2", "v4"]
    publish_copy(registry, "v3", make_current=True)  # the fix is published: it serves
    harness.poll()
    assert harness.holder.current.version == "v3" and harness.holder.refused is None


def test_a_pointer_to_a_missing_version_and_rolling_back_clear_the_refusal(
    registry: Path, harness: Harness
) -> None:
    (registry / NAME / "CURRENT").write_text("v9\n")
    harness.poll()
    assert harness.holder.refused.version == "v9"
    assert "no version 'v9'" in harness.holder.refused.reason
    assert harness.holder.current.version == "v1"
    set_current(registry, NAME, "v1")  # rolled back to what serves
    harness.poll()
    assert harness.holder.refused is None and harness.metric("served", "loaded") == 0


def test_a_pinned_version_stays_pinned(registry: Path) -> None:
    harness = Harness(registry, version="v1")
    try:
        publish_copy(registry, "v2", make_current=True)
        changes = harness.poll()
        assert changes.served is None and harness.loads == []
        assert harness.holder.current.version == "v1"
        assert harness.holder.status()["follows"] == "pinned"
    finally:
        harness.close()


def test_the_shadow_pointer_starts_changes_and_stops_the_shadow(
    registry: Path, harness: Harness
) -> None:
    publish_copy(registry, "v2")
    start_shadow(registry, NAME, "v2", 0.5)
    harness.poll()
    assert harness.shadow.active() == ("v2", 0.5)
    assert harness.loads == [("v2", "model-loader_0")]
    start_shadow(registry, NAME, "v2", 0.25)
    harness.poll()
    assert harness.shadow.active() == ("v2", 0.25) and len(harness.loads) == 1  # not reloaded
    stop_shadow(registry, NAME)
    harness.poll()
    assert harness.shadow.active() is None and harness.shadow.status() is None


def test_a_broken_shadow_candidate_is_refused_and_the_served_model_untouched(
    registry: Path, harness: Harness
) -> None:
    publish_copy(registry, "v2")
    publish_broken(registry, "v3")
    start_shadow(registry, NAME, "v2", 1.0)
    harness.poll()
    start_shadow(registry, NAME, "v3", 1.0)
    harness.poll()
    status = harness.shadow.status()
    assert status["status"] == "refused" and status["version"] == "v3"
    assert "cannot load" in status["refused"]["reason"]
    assert harness.shadow.active() is None
    assert harness.metric("shadow", "refused") == 1
    assert harness.holder.current.version == "v1" and harness.holder.refused is None
    (registry / NAME / "SHADOW").write_text("{not json")
    harness.poll()
    assert "not a valid shadow pointer" in harness.shadow.status()["refused"]["reason"]
    stop_shadow(registry, NAME)
    harness.poll()
    assert harness.shadow.status() is None


def test_models_that_leave_are_freed_from_the_frozen_heap(registry: Path, harness: Harness) -> None:
    """The served model and a shadow candidate, each in a reference cycle, frozen with the
    start-up heap: once replaced or stopped, the next polls free them."""
    publish_copy(registry, "v2")
    start_shadow(registry, NAME, "v2", 0.5)
    harness.poll()
    served, candidate = harness.holder.current, harness.shadow.candidate.model
    served.cycle, candidate.cycle = served, candidate  # type: ignore[attr-defined]
    left = [weakref.ref(served), weakref.ref(candidate)]
    del served, candidate
    harness.heap.freeze()
    publish_copy(registry, "v3", make_current=True)
    stop_shadow(registry, NAME)
    harness.poll()
    harness.poll()  # a batch in flight may have held one at the first
    gc.collect()
    assert [ref() for ref in left] == [None, None]
    assert harness.heap.pending == 0 and harness.holder.current.version == "v3"
