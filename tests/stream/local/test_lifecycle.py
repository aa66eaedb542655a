"""``Started``: the one context-manager lifecycle of the local services, the cluster, the
worker process and the worker fleet (start on entry, stop on exit, whatever happened)."""

from __future__ import annotations

from typing import Self

import pytest

from stream.local.cluster import LocalCluster
from stream.local.fleet import WorkerFleet
from stream.local.processes import LocalService, Started
from stream.local.worker import WorkerProcess


class Recorded(Started):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> Self:
        self.calls.append("start")
        return self

    def stop(self) -> None:
        self.calls.append("stop")


def test_entering_starts_and_leaving_stops() -> None:
    thing = Recorded()
    with thing as entered:
        assert entered is thing
        assert thing.calls == ["start"]
    assert thing.calls == ["start", "stop"]


def test_leaving_on_an_error_stops_and_lets_the_error_through() -> None:
    thing = Recorded()
    with pytest.raises(KeyError), thing:
        raise KeyError("boom")
    assert thing.calls == ["start", "stop"]


def test_a_subclass_must_say_how_it_starts_and_stops() -> None:
    class Half(Started):
        def start(self) -> Self:
            return self

    with pytest.raises(TypeError, match="stop"):
        Half()  # type: ignore[abstract]


@pytest.mark.parametrize("kind", [LocalService, LocalCluster, WorkerFleet, WorkerProcess])
def test_every_local_lifecycle_uses_it(kind: type) -> None:
    assert issubclass(kind, Started)
    assert "__enter__" not in vars(kind) and "__exit__" not in vars(kind)
