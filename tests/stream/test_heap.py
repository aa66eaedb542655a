"""``stream.heap``: the start-up heap is frozen, and an object released later (a replaced
model) is freed even when it sits in a reference cycle, once nothing holds it."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from stream.heap import FULL_COLLECTION_EVERY, HeapFreezer


class Model:
    """A stand-in with a reference cycle, as loaded models often have."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def heap() -> Iterator[HeapFreezer]:
    thresholds = gc.get_threshold()
    yield HeapFreezer()
    gc.unfreeze()  # the test process's collector as it was
    gc.set_threshold(*thresholds)


def test_freezing_takes_the_heap_out_of_the_collectors_generations(heap: HeapFreezer) -> None:
    young, middle, _ = gc.get_threshold()
    frozen = heap.freeze()
    assert frozen == gc.get_freeze_count() > 1000
    assert sum(gc.get_count()) < 1000  # what the next collections walk: new objects only
    # Full collections spaced out; the young and middle generations' thresholds unchanged.
    assert gc.get_threshold() == (young, middle, FULL_COLLECTION_EVERY)


def test_a_frozen_model_in_a_cycle_outlives_its_last_reference_until_settled(
    heap: HeapFreezer,
) -> None:
    model = Model()
    heap.freeze()
    gone = weakref.ref(model)
    heap.released(model)
    held = [model]  # a batch in flight still holds it
    del model
    gc.collect()
    assert gone() is not None  # frozen: the collector does not see the cycle
    assert heap.settle() == 1 and gone() is not None  # still held: tried again later
    held.clear()
    gc.collect()
    assert gone() is not None  # re-frozen by the last settle: still out of reach
    assert heap.settle() == 0 and gone() is None
    assert gc.get_freeze_count() > 1000  # and the rest is frozen again


def test_settle_does_nothing_when_nothing_was_released(heap: HeapFreezer) -> None:
    heap.freeze()
    collections: list[str] = []
    gc.callbacks.append(lambda phase, info: collections.append(phase))
    try:
        assert heap.settle() == 0
    finally:
        gc.callbacks.pop()
    assert collections == []  # no unfreeze, no full collection
