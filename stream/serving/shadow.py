"""Shadow scoring: a candidate model also classifies a share of each live batch, on its own
thread, and its predictions go to the ``shadow_predictions`` table (never to the topic).

Off the critical path by construction: :meth:`ShadowRunner.offer` is called on the event loop
with a batch's classified reviews and only puts a job on a bounded queue (``put_nowait``), so
it never waits; when the queue is full the job is dropped and counted. The shadow thread
scores jobs with the candidate and writes the rows through its own ClickHouse connection, at
the lowest CPU priority: it takes the cores only when the served model leaves them. A
candidate that raises costs a counted failure; one that hangs holds only the shadow thread
(the queue fills, later jobs are dropped, ``/health`` says it is stalled). A batch's ack never
waits for any of it.

Which reviews: those whose review_id hashes below ``share``, the same ones on every worker
and on redelivery, so the table (keyed by review_id and candidate version) stays exact.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from stream.metrics import Metrics
from stream.rows import ClassifiedReview
from stream.serving.holder import Predictor, Refusal

log = logging.getLogger(__name__)
_HASH_SPACE = float(2**64)


class ShadowWriter(Protocol):
    """What the runner needs of ``stream.sink.shadow.ShadowStore`` (blocking)."""

    def write_shadow(self, rows: Sequence[Mapping[str, Any]]) -> int: ...


def in_share(review_id: str, share: float) -> bool:
    """Whether ``review_id`` is among the ``share`` of reviews shadowed: a stable hash, so
    every worker and every redelivery picks the same reviews."""
    if share >= 1.0:
        return True
    digest = hashlib.blake2b(review_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SPACE < share


@dataclass(frozen=True)
class ShadowCandidate:
    """The model in shadow and what the ``SHADOW`` pointer said about it."""

    model: Predictor
    version: str
    share: float
    started_at: str


@dataclass(frozen=True)
class _Job:
    candidate: ShadowCandidate
    reviews: Sequence[ClassifiedReview]
    served_seconds: float  # the served model's forward time per review in its batch
    offered_at: float  # monotonic


class ShadowRunner:
    """The shadow thread and its bounded queue. ``start``, ``stop`` and ``offer`` run on the
    event loop; scoring and writing run on the thread ``shadow``."""

    def __init__(
        self,
        writer: ShadowWriter,
        metrics: Metrics,
        *,
        queue_batches: int,
        timeout_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.writer = writer
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.monotonic = monotonic
        self.candidate: ShadowCandidate | None = None
        self.refused: Refusal | None = None
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=queue_batches)
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy_since: float | None = None  # written by the shadow thread only
        self._last_error: str | None = None
        self.counts = {"offered": 0, "scored": 0, "dropped": 0, "expired": 0, "failed": 0}
        metrics.shadow_stalled.set_function(lambda: 1.0 if self.stalled() else 0.0)
        metrics.shadow_queue.set_function(self._queue.qsize)

    # --- on the event loop -------------------------------------------------------------

    def start(self, candidate: ShadowCandidate) -> None:
        """Score ``candidate`` from the next batch on (replacing any other)."""
        self.candidate = candidate
        self.refused = None
        self.metrics.shadow_info.info({"version": candidate.version, "share": str(candidate.share)})
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
            self._thread.start()
        log.info("shadow scoring %s on %.0f%% of reviews", candidate.version, candidate.share * 100)

    def set_share(self, share: float) -> None:
        """Score ``share`` of the reviews with the running candidate from now on."""
        if self.candidate is not None:
            self.start(replace(self.candidate, share=share))

    def stop(self) -> None:
        """Stop offering batches (and forget a refusal); queued jobs still finish."""
        if self.candidate is not None:
            log.info("shadow scoring of %s stopped", self.candidate.version)
        self.candidate = None
        self.refused = None
        self.metrics.shadow_info.info({"version": "", "share": "0"})

    def refuse(self, refusal: Refusal) -> None:
        """The pointer names a candidate that cannot be scored: no shadow, and say why."""
        self.stop()
        self.refused = refusal

    def active(self) -> tuple[str, float] | None:
        candidate = self.candidate
        return (candidate.version, candidate.share) if candidate else None

    def offer(self, classified: Sequence[ClassifiedReview], served_seconds: float) -> None:
        """Queue the shadowed share of a classified batch for the candidate. Never blocks and
        never raises: a full queue drops the job and counts it."""
        try:
            candidate = self.candidate
            if candidate is None or not classified:
                return
            chosen = [c for c in classified if in_share(c.review.event.review_id, candidate.share)]
            if not chosen:
                return
            self.counts["offered"] += len(chosen)
            job = _Job(candidate, chosen, served_seconds / len(classified), self.monotonic())
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                self.counts["dropped"] += len(chosen)
                self.metrics.shadow_reviews.labels("dropped").inc(len(chosen))
        except Exception:  # a shadow must never fail a batch
            log.exception("shadow offer failed; the batch goes on without it")

    def stalled(self) -> bool:
        since = self._busy_since
        return since is not None and self.monotonic() - since > self.timeout_s

    def status(self) -> dict[str, Any] | None:
        """The shadow for ``/health``; None when none runs or was refused."""
        candidate = self.candidate
        if candidate is None and self.refused is None:
            return None
        body: dict[str, Any] = {
            "status": "refused" if candidate is None else "stalled" if self.stalled() else "ok",
            "version": candidate.version if candidate else self.refused.version,  # type: ignore[union-attr]
            "share": candidate.share if candidate else None,
            "queued_batches": self._queue.qsize(),
            **{f"{name}_reviews": count for name, count in self.counts.items()},
            "last_error": self._last_error,
            "refused": self.refused.to_dict() if self.refused else None,
        }
        return body

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread (a hung candidate is left behind: the thread is a daemon)."""
        self.stop()
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    # --- on the shadow thread ----------------------------------------------------------

    def _run(self) -> None:
        lowest_cpu_priority()
        while not self._closing.is_set():
            try:
                job = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if self.monotonic() - job.offered_at > self.timeout_s:
                self.counts["expired"] += len(job.reviews)
                self.metrics.shadow_reviews.labels("expired").inc(len(job.reviews))
                continue
            self._busy_since = self.monotonic()
            try:
                self._score(job)
            except Exception as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"[:300]
                self.counts["failed"] += len(job.reviews)
                self.metrics.shadow_reviews.labels("failed").inc(len(job.reviews))
                log.warning("shadow batch of %d failed: %s", len(job.reviews), self._last_error)
            finally:
                self._busy_since = None

    def _score(self, job: _Job) -> None:
        reviews = job.reviews
        started = time.perf_counter()
        predictions = job.candidate.model.predict_cleaned([c.review.clean_text for c in reviews])
        seconds = time.perf_counter() - started
        if len(predictions) != len(reviews):
            raise ValueError(f"{len(predictions)} predictions for {len(reviews)} reviews")
        self.metrics.shadow_latency.observe(seconds)
        scored_at = datetime.now(UTC).replace(microsecond=0)
        rows = [
            shadow_row(c, p, job.candidate.version, job.served_seconds, seconds / len(reviews))
            | {"scored_at": scored_at}
            for c, p in zip(reviews, predictions, strict=True)
        ]
        self.writer.write_shadow(rows)
        self.counts["scored"] += len(rows)
        self.metrics.shadow_reviews.labels("scored").inc(len(rows))


def lowest_cpu_priority() -> None:
    """Give the calling thread the lowest CPU priority (Linux keeps a nice value per thread),
    so under load the served model's threads get the cores and the shadow gets what is left.
    The candidate's forward runs on this thread (ONNX Runtime with one thread runs in the
    caller). Elsewhere, or without permission, it stays as it is."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError) as exc:
        log.info("shadow thread keeps its CPU priority: %s", exc)


def shadow_row(
    served: ClassifiedReview,
    prediction: Any,
    candidate_version: str,
    served_seconds: float,
    candidate_seconds: float,
) -> dict[str, Any]:
    """One ``shadow_predictions`` row (``stream.sink.shadow.SHADOW_COLUMNS``) but its
    ``scored_at``: the served model's prediction beside the candidate's."""
    event = served.review.event
    probabilities = prediction.probabilities
    return {
        "review_id": event.review_id,
        "candidate_version": candidate_version,
        "served_version": served.model_version,
        "category": event.category,
        "rating": event.rating or 0,
        "served_sentiment": served.label,
        "candidate_sentiment": prediction.label,
        "served_confidence": served.confidence,
        "candidate_confidence": float(prediction.confidence),
        "candidate_prob_negative": float(probabilities["negative"]),
        "candidate_prob_neutral": float(probabilities["neutral"]),
        "candidate_prob_positive": float(probabilities["positive"]),
        "served_seconds": served_seconds,
        "candidate_seconds": candidate_seconds,
        "created_at": served.review.created_at,
    }
