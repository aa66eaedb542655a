"""Loading a registry version for serving: resolve, load, run the canary, or refuse.

Blocking (seconds): the worker calls it on its loader thread, never on the model thread that
serves batches; the ``shadow`` commands call it to check a version before pointing at it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from stream.config import ModelConfig
from stream.serving.canary import CanaryFailed, run_canary

if TYPE_CHECKING:
    from model.predictor import SentimentModel

log = logging.getLogger(__name__)
_REASON_CHARS = 400


class ModelRefused(RuntimeError):
    """``version`` cannot serve; ``reason`` says why (missing, unloadable, failed canary)."""

    def __init__(self, version: str, reason: str) -> None:
        super().__init__(f"model version {version!r} refused: {reason}")
        self.version = version
        self.reason = reason


def load_options(config: ModelConfig, *, threads: int | None = None) -> dict[str, Any]:
    """``SentimentModel.load``'s settings from ``config`` (``threads`` overrides
    ``model_threads``): the worker's model and the model process's copy load alike."""
    return {
        "max_length": config.model_max_length,
        "threads": threads or config.model_threads,
        "runtime": config.model_runtime,
        "token_budget": config.model_token_budget,
    }


def load_checked(
    config: ModelConfig, version: str, *, tolerance: float, threads: int | None = None
) -> SentimentModel:
    """The model at registry ``version`` (``"current"`` follows the pointer), loaded with
    ``config``'s runtime settings (``threads`` overrides ``config.model_threads``) and
    checked by the canary. Raises :class:`ModelRefused` instead of any load error."""
    from model.predictor import SentimentModel
    from model.registry import resolve_model_dir

    try:
        directory = resolve_model_dir(config.model_registry, config.model_name, version)
    except (FileNotFoundError, ValueError) as exc:
        raise ModelRefused(version, str(exc)) from exc
    resolved = directory.name
    try:
        model = SentimentModel.load(directory, **load_options(config, threads=threads))
    except Exception as exc:
        reason = f"cannot load {directory}: {type(exc).__name__}: {exc}"
        raise ModelRefused(resolved, reason[:_REASON_CHARS]) from exc
    try:
        result = run_canary(model, version=resolved, tolerance=tolerance)
    except CanaryFailed as exc:
        raise ModelRefused(resolved, f"canary: {exc}"[:_REASON_CHARS]) from exc
    log.info(
        "model %s loaded from %s (%s runtime); canary accuracy %.3f (card %s)",
        model.version,
        directory,
        model.runtime,
        result.accuracy,
        "n/a" if result.reference is None else f"{result.reference:.3f}",
    )
    return model
