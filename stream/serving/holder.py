"""The served model, swappable between batches without a lock on the hot path.

The batch chain asks :class:`ModelHolder` for ``current`` once per batch and uses that one
model (and its version) for the whole batch. The reloader prepares the next model on its own
thread and calls :meth:`ModelHolder.swap` on the event loop, so a batch in flight keeps the
model it started with and the next batch gets the new one: versions change only at a batch
boundary. Reading an attribute is atomic, so the hot path takes no lock.

A worker starts serving before its model is loaded (``stream.startup``): until the start-up
installs it, ``current`` raises :class:`ModelNotLoaded` and ``status()`` says "starting".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from model.cputime import ThreadCpu


class Predictor(Protocol):
    """What the worker needs of ``model.predictor.SentimentModel``."""

    version: str
    runtime: str
    directory: Path  # where it was loaded from (the model process loads it there again)

    def predict_cleaned(self, texts: Sequence[str], cpu: ThreadCpu | None = None) -> list[Any]:
        """One prediction per text that already went through ``model.text.clean_text``; with
        ``cpu``, its thread CPU time by stage (``tokenize``, ``forward``) is added there."""


class ModelNotLoaded(RuntimeError):
    """No model is served yet: the worker is still starting."""


@dataclass(frozen=True)
class Refusal:
    """A model version the worker would not serve (or score in shadow), and why."""

    version: str
    reason: str
    at: datetime

    def to_dict(self) -> dict[str, str]:
        return {"version": self.version, "reason": self.reason, "at": _iso(self.at)}


class ModelHolder:
    """The model being served. ``current`` is read by the batch chain and the pages;
    :meth:`swap` and :meth:`refuse` run on the event loop only.

    ``follows_current``: the worker serves the registry's ``CURRENT`` (and reloads when it
    moves); otherwise its version is pinned."""

    def __init__(self, model: Predictor | None, *, follows_current: bool) -> None:
        self._current = model
        self.follows_current = follows_current
        self.loaded_at = datetime.now(UTC)
        self.refused: Refusal | None = None
        self.swaps = 0

    @property
    def current(self) -> Predictor:
        """The served model; raises :class:`ModelNotLoaded` before the first one is in."""
        model = self._current
        if model is None:
            raise ModelNotLoaded("the served model is still loading")
        return model

    @property
    def loaded(self) -> bool:
        return self._current is not None

    def install(self, model: Predictor) -> None:
        """Serve the first model (start-up, before any batch: ``stream.startup``)."""
        if self._current is not None:
            raise RuntimeError("a model is served already: swap it instead")
        self.loaded_at = datetime.now(UTC)
        self._current = model

    def swap(self, model: Predictor) -> Predictor:
        """Serve ``model`` from the next batch on; returns the model it replaces."""
        previous, self._current = self.current, model
        self.loaded_at = datetime.now(UTC)
        self.refused = None
        self.swaps += 1
        return previous

    def refuse(self, refusal: Refusal) -> None:
        """Record that ``refusal.version`` was not taken; the current model keeps serving."""
        self.refused = refusal

    def in_sync(self) -> None:
        """The registry names the served version again: an earlier refusal is over."""
        self.refused = None

    def status(self) -> dict[str, Any]:
        """The served model for ``/health``."""
        model = self._current
        if model is None:
            return {
                "status": "starting",
                "follows": "current" if self.follows_current else "pinned",
            }
        return {
            "status": "ok",
            "version": model.version,
            "runtime": model.runtime,
            "loaded_at": _iso(self.loaded_at),
            "follows": "current" if self.follows_current else "pinned",
            "reloads": self.swaps,
            "refused": self.refused.to_dict() if self.refused else None,
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")
