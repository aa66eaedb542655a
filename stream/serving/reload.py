"""Hot reload: follow the registry's ``CURRENT`` and ``SHADOW`` pointers while serving.

Every ``model_reload_interval_s`` the :class:`Reloader` (on the event loop) asks the
:class:`RegistryWatcher` (on the loader thread, never the model thread that serves batches)
what changed. The watcher reads both pointers and loads what is new beside the served model,
checked by the canary (``stream.serving.loader.load_checked``). Back on the event loop the
reloader swaps the served model between batches (``ModelHolder.swap``), starts, changes or
stops the shadow, and records what was refused: the old model keeps serving, ``/health``
names the refused version and the reason, and ``reviewpulse_model_reloads_total`` counts it.
A refused version is not tried again until its pointer or its directory changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from stream.config import ModelConfig, ServingConfig
from stream.heap import HeapFreezer
from stream.metrics import Metrics
from stream.serving.holder import ModelHolder, Predictor, Refusal
from stream.serving.loader import ModelRefused, load_checked
from stream.serving.shadow import ShadowCandidate, ShadowRunner

log = logging.getLogger(__name__)

Loader = Callable[[str, int], Predictor]
"""(version, threads) -> a loaded, canary-checked model, or raises ``ModelRefused``."""

Signature = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class Served:
    """What the registry says about the served model: a new model, a refusal, or in sync."""

    model: Predictor | None = None
    refusal: Refusal | None = None
    in_sync: bool = False
    repeated: bool = False  # the refusal was reported before: show it, do not count it


@dataclass(frozen=True)
class Shadow:
    """A change of the shadow: a candidate to start, a refusal, a new share for the running
    candidate, or stop (none of them)."""

    candidate: ShadowCandidate | None = None
    refusal: Refusal | None = None
    share: float | None = None
    repeated: bool = False  # the refusal was reported before: show it, do not count it


@dataclass(frozen=True)
class Changes:
    served: Served | None = None  # None: nothing to do
    shadow: Shadow | None = None  # None: nothing to do


class RegistryWatcher:
    """Reads the pointers and loads what changed. Runs on the loader thread only."""

    def __init__(
        self,
        model: ModelConfig,
        serving: ServingConfig,
        *,
        loader: Loader | None = None,
        warm: Callable[[Path], None] | None = None,
    ) -> None:
        self.registry = Path(model.model_registry)
        self.name = model.model_name
        self.follows_current = model.model_version.lower() == "current"
        self.model_threads = model.model_threads
        self.shadow_threads = serving.shadow_threads
        self._load: Loader = loader or (
            lambda version, threads: load_checked(
                model, version, tolerance=serving.model_canary_tolerance, threads=threads
            )
        )
        self._refused: dict[tuple[str, str], tuple[Signature, Refusal]] = {}
        # Called with a new served model's directory before it is handed over for the swap
        # (the model process loads it too): slow work stays on this thread.
        self._warm = warm

    def check(self, served_version: str, shadow: tuple[str, float] | None) -> Changes:
        """What to change, given the served version and the shadow (version, share)."""
        return Changes(
            served=self._check_served(served_version) if self.follows_current else None,
            shadow=self._check_shadow(served_version, shadow),
        )

    def _check_served(self, served_version: str) -> Served | None:
        from model.registry import CURRENT_FILE, current_version

        root = self.registry / self.name
        try:
            version = current_version(self.registry, self.name)
        except (OSError, ValueError) as exc:
            return self._refuse("served", "CURRENT", root / CURRENT_FILE, str(exc), Served)
        if version == served_version:
            self._refused.pop(("served", version), None)
            return Served(in_sync=True)
        directory = root / version
        if known := self._known("served", version, directory):
            return Served(refusal=known, repeated=True)  # refused before, unchanged since
        try:
            model = self._load(version, self.model_threads)
        except ModelRefused as exc:
            return self._refuse("served", version, directory, exc.reason, Served)
        self._refused.pop(("served", version), None)
        if self._warm is not None:
            try:
                self._warm(model.directory)
            except Exception:  # the first batch on it loads it instead
                log.exception("could not load model %s in the model process ahead", version)
        return Served(model=model)

    def _check_shadow(self, served_version: str, active: tuple[str, float] | None) -> Shadow | None:
        from model.registry import SHADOW_FILE, read_shadow

        root = self.registry / self.name
        try:
            spec = read_shadow(self.registry, self.name)
        except (OSError, ValueError) as exc:
            return self._refuse("shadow", "SHADOW", root / SHADOW_FILE, str(exc), Shadow)
        if spec is None:
            refused = [key for key in self._refused if key[0] == "shadow"]
            for key in refused:
                del self._refused[key]
            return Shadow() if active or refused else None
        if spec.version == served_version:
            reason = "the candidate is the served model: nothing to compare"
            return self._refuse("shadow", spec.version, root / SHADOW_FILE, reason, Shadow)
        if active and active[0] == spec.version:
            return Shadow(share=spec.share) if active[1] != spec.share else None
        if known := self._known("shadow", spec.version, root / spec.version):
            return Shadow(refusal=known, repeated=True)
        try:
            model = self._load(spec.version, self.shadow_threads)
        except ModelRefused as exc:
            return self._refuse("shadow", spec.version, root / spec.version, exc.reason, Shadow)
        self._refused.pop(("shadow", spec.version), None)
        return Shadow(candidate=ShadowCandidate(model, spec.version, spec.share, spec.started_at))

    def _known(self, role: str, version: str, path: Path) -> Refusal | None:
        """The refusal of ``version`` if it was refused before and ``path`` is unchanged."""
        signature, refusal = self._refused.get((role, version), ((), None))
        return refusal if refusal is not None and signature == _signature(path) else None

    def _refuse(self, role: str, version: str, path: Path, reason: str, kind: type) -> object:
        if known := self._known(role, version, path):
            return kind(refusal=known, repeated=True)
        refusal = Refusal(version, reason, datetime.now(UTC))
        self._refused[(role, version)] = (_signature(path), refusal)
        return kind(refusal=refusal)


def _signature(path: Path) -> Signature:
    """Names, sizes and modification times of ``path`` (a file, or a directory's files):
    a refused version is tried again once it changes."""
    try:
        if path.is_file():
            stat = path.stat()
            return ((path.name, stat.st_size, stat.st_mtime_ns),)
        return tuple(
            sorted(
                (p.name, p.stat().st_size, p.stat().st_mtime_ns)
                for p in path.iterdir()
                if p.is_file()
            )
        )
    except OSError:
        return ()


class Reloader:
    """Applies the watcher's findings on the event loop, between batches."""

    def __init__(
        self,
        holder: ModelHolder,
        watcher: RegistryWatcher,
        executor: Executor,
        metrics: Metrics,
        *,
        model_name: str,
        shadow: ShadowRunner | None = None,
        heap: HeapFreezer | None = None,
    ) -> None:
        self.holder = holder
        self.watcher = watcher
        self.executor = executor
        self.metrics = metrics
        self.model_name = model_name
        self.shadow = shadow
        self.heap = heap

    async def poll(self) -> Changes:
        """One look at the registry; returns what was applied. Models that left, now or at
        an earlier poll, are then let go of the frozen heap (``stream.heap``)."""
        served = self.holder.current.version
        active = self.shadow.active() if self.shadow else None
        loop = asyncio.get_running_loop()
        changes = await loop.run_in_executor(self.executor, self.watcher.check, served, active)
        self.apply(changes)
        if self.heap is not None:
            self.heap.settle()
        return changes

    def apply(self, changes: Changes) -> None:
        """Swap, refuse, start or stop, on the event loop."""
        before = self._models()
        if changes.served is not None:
            self._apply_served(changes.served)
        if changes.shadow is not None and self.shadow is not None:
            self._apply_shadow(changes.shadow)
        if self.heap is not None:
            after = {id(model) for model in self._models()}
            for model in before:
                if id(model) not in after:
                    self.heap.released(model)

    def _models(self) -> list[Predictor]:
        """The served model and the shadow candidate's, if any."""
        models = [self.holder.current]
        if self.shadow is not None and self.shadow.candidate is not None:
            models.append(self.shadow.candidate.model)
        return models

    def _apply_served(self, served: Served) -> None:
        if served.model is not None:
            old = self.holder.swap(served.model)
            self.metrics.model_info.info(model_info(self.model_name, served.model))
            self.metrics.model_reloads.labels("served", "loaded").inc()
            log.info("now serving model %s (was %s)", served.model.version, old.version)
        elif served.refusal is not None:
            self.holder.refuse(served.refusal)
            if served.repeated:
                return
            self.metrics.model_reloads.labels("served", "refused").inc()
            log.error(
                "model %s refused, still serving %s: %s",
                served.refusal.version,
                self.holder.current.version,
                served.refusal.reason,
            )
        elif served.in_sync:
            self.holder.in_sync()

    def _apply_shadow(self, shadow: Shadow) -> None:
        assert self.shadow is not None
        if shadow.candidate is not None:
            self.shadow.start(shadow.candidate)
            self.metrics.model_reloads.labels("shadow", "loaded").inc()
        elif shadow.share is not None:
            self.shadow.set_share(shadow.share)
        elif shadow.refusal is not None:
            self.shadow.refuse(shadow.refusal)
            if shadow.repeated:
                return
            self.metrics.model_reloads.labels("shadow", "refused").inc()
            log.error(
                "shadow candidate %s refused: %s", shadow.refusal.version, shadow.refusal.reason
            )
        else:
            self.shadow.stop()


def model_info(name: str, model: Predictor) -> dict[str, str]:
    """The ``reviewpulse_model`` info labels of the served model."""
    return {"name": name, "version": model.version, "runtime": model.runtime}
