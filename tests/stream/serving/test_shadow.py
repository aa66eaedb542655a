"""The shadow runner on its own, with fakes below it (the candidate model, the table)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from stream.keywords import ReviewTerms
from stream.metrics import Metrics, read_samples
from stream.rows import ClassifiedReview
from stream.serving.shadow import ShadowCandidate, ShadowRunner, in_share
from stream.validation import parse_review
from tests.stream.pipeline.fakes import FakeModel, FakePrediction, GatedModel, review_bytes

NOW = datetime(2026, 11, 27, 5, 0, 30, tzinfo=UTC)


class Journal:
    """The shadow table, as a list."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def write_shadow(self, rows) -> int:
        self.rows.extend(rows)
        return len(rows)


def classified(ids: range, **fields) -> list[ClassifiedReview]:
    reviews = [
        parse_review(review_bytes(i, **fields), max_text_chars=100, max_event_bytes=10_000)
        for i in ids
    ]
    terms = ReviewTerms([], [])
    return [
        ClassifiedReview.of(r, terms, FakePrediction(), model_version="fake-1", processed_at=NOW)
        for r in reviews
    ]


def runner(candidate: FakeModel, *, share: float = 1.0, **kwargs) -> ShadowRunner:
    metrics = Metrics()
    shadow = ShadowRunner(
        kwargs.pop("writer", Journal()),
        metrics,
        queue_batches=kwargs.pop("queue_batches", 2),
        timeout_s=kwargs.pop("timeout_s", 5.0),
        **kwargs,
    )
    shadow.start(ShadowCandidate(candidate, candidate.version, share, "2026-11-27T05:00:00+00:00"))
    return shadow


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def metric(shadow: ShadowRunner, outcome: str) -> float:
    return shadow.metrics.shadow_reviews.labels(outcome)._value.get()


def test_the_candidate_scores_the_batch_beside_the_served_labels() -> None:
    journal = Journal()
    shadow = runner(GatedModel(), writer=journal)
    try:
        batch = classified(range(3), rating=2) + classified(range(3, 4))
        shadow.offer(batch, served_seconds=0.4)
        wait_until(lambda: len(journal.rows) == 4)
    finally:
        shadow.close()
    row = journal.rows[0]
    assert (row["review_id"], row["served_version"], row["candidate_version"]) == (
        "r-0",
        "fake-1",
        "cand-2",
    )
    assert (row["served_sentiment"], row["candidate_sentiment"], row["rating"]) == (
        "positive",
        "negative",
        2,
    )
    assert row["served_seconds"] == pytest.approx(0.1)  # per review of the served batch
    assert row["candidate_confidence"] == pytest.approx(0.8) and row["candidate_seconds"] >= 0
    assert journal.rows[3]["rating"] == 0  # no rating
    assert row["created_at"] == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    assert metric(shadow, "scored") == 4 and shadow.counts["scored"] == 4


def test_a_hanging_candidate_never_blocks_offer_fills_the_queue_and_is_reported() -> None:
    gate = threading.Event()
    candidate = GatedModel(gate=gate)
    shadow = runner(candidate, queue_batches=2, timeout_s=0.2)
    try:
        shadow.offer(classified(range(0, 10)), served_seconds=0.1)
        assert candidate.started.wait(5)  # the shadow thread now hangs in the candidate
        for i in range(1, 6):  # two fit in the queue, three are dropped, none waits
            shadow.offer(classified(range(10 * i, 10 * i + 10)), served_seconds=0.1)
        assert not gate.is_set() and metric(shadow, "dropped") == 30
        wait_until(shadow.stalled)
        status = shadow.status()
        assert status["status"] == "stalled" and status["queued_batches"] == 2
        text = shadow.metrics.exposition()[0].decode()
        assert read_samples(text, "reviewpulse_shadow_stalled") == {(): 1.0}
        assert read_samples(text, "reviewpulse_shadow_queue_batches") == {(): 2.0}
        gate.set()
        # The queued jobs waited longer than the timeout: dropped as expired, not scored late.
        wait_until(lambda: metric(shadow, "expired") == 20 and metric(shadow, "scored") == 10)
        assert not shadow.stalled()
    finally:
        gate.set()
        shadow.close()


def test_a_raising_candidate_is_counted_and_the_next_batches_still_go_through() -> None:
    journal = Journal()
    failing = GatedModel(error=RuntimeError("candidate exploded"))
    shadow = runner(failing, writer=journal)
    try:
        shadow.offer(classified(range(4)), served_seconds=0.1)
        wait_until(lambda: shadow.counts["failed"] == 4)
        assert "candidate exploded" in shadow.status()["last_error"]
        assert metric(shadow, "failed") == 4
        failing.error = None
        shadow.offer(classified(range(4, 6)), served_seconds=0.1)
        wait_until(lambda: len(journal.rows) == 2)
    finally:
        shadow.close()


def test_a_failing_table_write_is_counted_like_a_failing_candidate() -> None:
    class Down:
        def write_shadow(self, rows) -> int:
            raise ConnectionError("clickhouse down")

    shadow = runner(GatedModel(), writer=Down())
    try:
        shadow.offer(classified(range(3)), served_seconds=0.1)
        wait_until(lambda: metric(shadow, "failed") == 3)
    finally:
        shadow.close()


def test_the_shadow_thread_runs_at_the_lowest_cpu_priority() -> None:
    journal = Journal()
    shadow = runner(GatedModel(), writer=journal)
    try:
        shadow.offer(classified(range(2)), served_seconds=0.1)
        wait_until(lambda: len(journal.rows) == 2)  # the thread is running its loop
        thread_id = shadow._thread.native_id
        assert os.getpriority(os.PRIO_PROCESS, thread_id) == 19
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 19
    finally:
        shadow.close()


def test_only_the_share_is_offered_and_it_is_the_same_reviews_every_time() -> None:
    ids = [f"review-{i}" for i in range(20_000)]
    chosen = [i for i in ids if in_share(i, 0.25)]
    assert 0.24 < len(chosen) / len(ids) < 0.26
    assert chosen == [i for i in ids if in_share(i, 0.25)]
    assert all(in_share(i, 1.0) for i in ids[:100])
    journal = Journal()
    shadow = runner(GatedModel(), share=0.25, writer=journal)
    try:
        batch = classified(range(400))
        shadow.offer(batch, served_seconds=0.1)
        want = {c.review.event.review_id for c in batch if in_share(c.review.event.review_id, 0.25)}
        wait_until(lambda: len(journal.rows) == len(want))
        assert {row["review_id"] for row in journal.rows} == want
    finally:
        shadow.close()


def test_no_candidate_no_work_and_stop_forgets_it() -> None:
    shadow = runner(GatedModel())
    shadow.stop()
    shadow.offer(classified(range(3)), served_seconds=0.1)
    assert shadow.counts["offered"] == 0 and shadow.status() is None
    assert shadow.active() is None
    shadow.close()
