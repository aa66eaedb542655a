"""The start-up heap, kept out of the cyclic garbage collector's way.

Once started, the worker holds about 120,000 long-lived objects the collector tracks:
imported modules, Faust's app, the model and its tokenizer. Every full collection walks all
of them, and a batch of thousands of reviews allocates enough to trigger collections every
few hundred reviews, each holding the GIL that the event loop and the model thread need. In
``bench.stream`` (40,000 reviews) collections took 1.9 s without freezing and 0.55 s with
the start-up heap frozen (``gc.freeze``: moved to a generation the collector never walks).

What stays unfrozen is mostly the batches in flight, and CPython runs a full collection once
ten middle-generation collections have passed and the objects promoted since the last full
one reach a quarter of the old generation. With the start-up heap frozen, that generation
is small, so the quarter is reached every time: a full collection every ten, each walking
every batch in flight (36 ms each under a backlog). :data:`FULL_COLLECTION_EVERY` (100
instead of 10) left the young collections alone and cut collection time in ``bench.stream``
from 0.82 s to 0.48 s for 40,000 reviews (a full collection still comes every few seconds
under load, so cycles are still freed).

Frozen objects are freed by reference counting only, so a model that leaves (a hot reload
or the shadow candidate replaced) and sits in a reference cycle would never be collected.
:meth:`HeapFreezer.released` notes it; :meth:`HeapFreezer.settle`, called after each
registry poll, unfreezes, collects and freezes again until every released model is gone
(a batch in flight may still hold one for a moment).
"""

from __future__ import annotations

import gc
import weakref

FULL_COLLECTION_EVERY = 100
"""Middle-generation collections between full ones (CPython's third threshold; default 10)."""


class HeapFreezer:
    """Freezes the heap after start-up and lets replaced models be collected later."""

    def __init__(self) -> None:
        self._released: list[weakref.ref[object]] = []

    def freeze(self) -> int:
        """Collect, then freeze what is left, and space full collections out
        (:data:`FULL_COLLECTION_EVERY`); returns how many objects are frozen."""
        gc.collect()
        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
        return gc.get_freeze_count()

    def released(self, obj: object) -> None:
        """``obj`` is no longer served: :meth:`settle` lets the collector free it."""
        self._released.append(weakref.ref(obj))

    @property
    def pending(self) -> int:
        """Released objects not freed yet."""
        self._released = [ref for ref in self._released if ref() is not None]
        return len(self._released)

    def settle(self) -> int:
        """If a released object is still alive: unfreeze, collect and freeze again (tens of
        milliseconds, holding the GIL; only after a model changed). Returns how many
        released objects are still alive (held elsewhere: tried again at the next call)."""
        if not self.pending:
            return 0
        gc.unfreeze()
        self.freeze()
        return self.pending
