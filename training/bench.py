"""Forward throughput of served models: reviews/s through ``SentimentModel.predict_batch``.

Two batchings: ``stream`` feeds batches of ``batch_size`` reviews in corpus order, as the
worker's micro-batches arrive (padding decided inside each batch); ``sorted`` first orders all
texts by length (best case, offline scoring). Several models are measured in interleaved
rounds, so their ratio holds even when other processes share the CPU."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model.predictor import DEFAULT_TOKEN_BUDGET, SentimentModel


def _one_pass(model: Any, texts: Sequence[str], batch_size: int, *, sort: bool) -> float:
    if sort:
        texts = sorted(texts, key=len)
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        model.predict_batch(texts[start : start + batch_size])
    return len(texts) / (time.perf_counter() - started)


def throughput(
    models: dict[str, Any],
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    rounds: int = 3,
    modes: Sequence[str] = ("stream", "sorted"),
) -> dict[str, dict[str, float]]:
    """Best-of-``rounds`` reviews/s per model and mode, rounds interleaved across models."""
    for model in models.values():  # warm-up
        model.predict_batch(list(texts[:batch_size]))
    best: dict[str, dict[str, float]] = {name: {} for name in models}
    for _ in range(rounds):
        for mode in modes:
            for name, model in models.items():
                rate = _one_pass(model, list(texts), batch_size, sort=mode == "sorted")
                best[name][mode] = max(best[name].get(mode, 0.0), rate)
    return best


def load_models(
    paths: dict[str, Path],
    *,
    threads: int,
    max_length: int,
    runtimes: Sequence[str] = ("auto",),
    token_budget: int = DEFAULT_TOKEN_BUDGET,
) -> dict[str, SentimentModel]:
    """Each model once per runtime, named ``name`` (one runtime) or ``name/runtime``."""
    return {
        (name if len(runtimes) == 1 else f"{name}/{runtime}"): SentimentModel.load(
            path,
            threads=threads,
            max_length=max_length,
            runtime=runtime,
            token_budget=token_budget,
        )
        for name, path in paths.items()
        for runtime in runtimes
    }
