"""``POST /predict`` behind limits, so a flood of requests never slows the stream.

- The request body is bounded (``predict-max-body-bytes``, 413) and so is its text count
  (``predict-max-texts``, 400).
- At most ``predict-queue`` requests run or wait at once; the next one gets 429 at once.
- Requests are parsed and scored on their own thread (``WorkerContext.predict_executor``),
  never on the stream's model thread, and the stream goes first: a request is scored in
  small pieces, and a piece starts only while the agent holds no batch (its heartbeat). So a
  stream batch waits for at most one piece; under a backlog /predict is shed (503 after
  ``predict-timeout-s``) rather than slowing the stream.
- A refusal (429) is answered after a short pause: a client that retries at once cannot
  spin the event loop the stream's agent runs on.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import Executor
from typing import Any, Protocol

from model.text import clean_text
from stream.config import WebConfig
from stream.metrics import Metrics
from stream.serving.holder import ModelHolder, Predictor

# Texts scored per piece: a stream batch waits for at most one piece (a few milliseconds).
PIECE_TEXTS = 8
# How long a 429 is held back (a cheap sleep on the loop), so refused clients slow down.
REFUSAL_PAUSE_S = 0.25


class PredictRefused(Exception):
    """A request that is answered with an error: HTTP status, outcome label, message."""

    def __init__(self, status: int, outcome: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome


class IdleSignal(Protocol):
    """What the predict thread needs of the stream (``stream.health.Heartbeat``)."""

    def wait_idle(self, timeout_s: float) -> bool: ...


def parse_texts(body: bytes, max_texts: int) -> list[str]:
    """The ``texts`` of a ``{"texts": [...]}`` body; raises :class:`PredictRefused` (400)."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PredictRefused(400, "bad_request", f"body is not JSON: {exc}") from None
    texts = payload.get("texts") if isinstance(payload, dict) else None
    if not isinstance(texts, list) or not texts:
        raise PredictRefused(
            400, "bad_request", 'send {"texts": ["review", ...]} with at least one text'
        )
    if len(texts) > max_texts:
        raise PredictRefused(400, "bad_request", f"at most {max_texts} texts per request")
    if not all(isinstance(text, str) for text in texts):
        raise PredictRefused(400, "bad_request", "every text must be a string")
    return texts


class PredictService:
    """Admission, the stream-first gate and the model call of ``POST /predict``."""

    def __init__(
        self,
        models: ModelHolder,
        web: WebConfig,
        *,
        max_text_chars: int,
        executor: Executor,
        stream_model: IdleSignal,
        metrics: Metrics,
    ) -> None:
        self.models = models
        self.web = web
        self.max_text_chars = max_text_chars
        self.executor = executor
        self.stream_model = stream_model
        self.metrics = metrics
        self.in_flight = 0

    async def admit(self) -> None:
        """Raise 429 (after :data:`REFUSAL_PAUSE_S`) when ``predict-queue`` requests are in
        progress; called before the body is read, so a refusal costs next to nothing."""
        if self.in_flight >= self.web.predict_queue:
            await asyncio.sleep(REFUSAL_PAUSE_S)
            raise PredictRefused(
                429, "busy", f"{self.in_flight} /predict requests are in progress; retry later"
            )

    async def answer(self, body: bytes) -> dict[str, Any]:
        """Predictions for a request body, or :class:`PredictRefused`."""
        await self.admit()
        if not self.models.loaded:
            raise PredictRefused(503, "starting", "the model is still loading; retry shortly")
        self.in_flight += 1
        self.metrics.predict_in_flight.set(self.in_flight)
        model = self.models.current  # one model for the whole request
        deadline = time.monotonic() + self.web.predict_timeout_s
        try:
            loop = asyncio.get_running_loop()
            predictions = await loop.run_in_executor(
                self.executor, self._score, model, body, deadline
            )
        finally:
            self.in_flight -= 1
            self.metrics.predict_in_flight.set(self.in_flight)
        return {"model_version": model.version, "predictions": predictions}

    def _score(self, model: Predictor, body: bytes, deadline: float) -> list[Any]:
        """On the predict thread: parse, clean, then score piece by piece while the stream
        holds no batch."""
        texts = parse_texts(body, self.web.predict_max_texts)
        cleaned = [clean_text(text)[: self.max_text_chars] for text in texts]
        empty = [i for i, text in enumerate(cleaned) if not text]
        if empty:
            raise PredictRefused(400, "bad_request", f"texts at {empty} are empty after cleaning")
        predictions: list[Any] = []
        for start in range(0, len(cleaned), PIECE_TEXTS):
            left = deadline - time.monotonic()
            if left <= 0 or not self.stream_model.wait_idle(left):
                raise PredictRefused(
                    503,
                    "timeout",
                    f"not scored within {self.web.predict_timeout_s:g}s: the stream has the "
                    "model first; retry later",
                )
            predictions += model.predict_cleaned(cleaned[start : start + PIECE_TEXTS])
        return predictions
