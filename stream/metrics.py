"""Every Prometheus metric ReviewPulse exports, in one place.

``Metrics`` owns its own ``CollectorRegistry`` and is passed to whatever records
metrics, so tests build a fresh one instead of patching module globals.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)

PREFIX = "reviewpulse"
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_END_TO_END = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
STAGES = (
    "decode_validate",
    "clean",
    "segment",
    "tokenize",
    "forward",
    "build",
    "encode",
    "produce",
    "insert",
)
"""The stages of a batch whose thread CPU time ``reviewpulse_stage_cpu_seconds`` counts."""


class Metrics:
    """The worker's metrics. Names are ``reviewpulse_*``; see ``--help`` of the worker."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # process_start_time_seconds (restarts), process_resident_memory_bytes, CPU, fds.
        ProcessCollector(registry=r)
        self.events_consumed = Counter(
            f"{PREFIX}_events_consumed", "Input messages taken from the review topic.", registry=r
        )
        self.events_processed = Counter(
            f"{PREFIX}_events_processed",
            "Valid reviews classified, published and stored.",
            registry=r,
        )
        self.events_dead_lettered = Counter(
            f"{PREFIX}_events_dead_lettered",
            "Input messages sent to the dead-letter topic, by reason code.",
            ["reason"],
            registry=r,
        )
        self.stage_cpu = Counter(
            f"{PREFIX}_stage_cpu_seconds",
            "Thread CPU time of each stage of the batches, by stage (decode_validate, clean, "
            "segment, tokenize, forward, build, encode, produce, insert), read with "
            "time.thread_time in the thread that does the work; work a library hands to "
            "threads of its own (the tokenizer's pool, the Kafka client's I/O, embedded "
            "ClickHouse) is not in it.",
            ["stage"],
            registry=r,
        )
        for stage in STAGES:
            self.stage_cpu.labels(stage)
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size", "Messages per micro-batch.", buckets=_BATCH_SIZES, registry=r
        )
        self.batch_latency = Histogram(
            f"{PREFIX}_batch_latency_seconds",
            "Time from taking a micro-batch to it being safe to ack.",
            buckets=_FAST,
            registry=r,
        )
        self.model_latency = Histogram(
            f"{PREFIX}_model_latency_seconds",
            "Model forward pass (plus segmentation) per micro-batch.",
            buckets=_FAST,
            registry=r,
        )
        self.clickhouse_insert_latency = Histogram(
            f"{PREFIX}_clickhouse_insert_latency_seconds",
            "ClickHouse insert per micro-batch, including the duplicate check.",
            buckets=_FAST,
            registry=r,
        )
        self.clickhouse_rows = Counter(
            f"{PREFIX}_clickhouse_rows_inserted",
            "Rows inserted into the reviews table (duplicates dropped by the store excluded).",
            registry=r,
        )
        self.produce_latency = Histogram(
            f"{PREFIX}_produce_latency_seconds",
            "Publishing a micro-batch's sentiment events until the broker acknowledged them.",
            buckets=_FAST,
            registry=r,
        )
        self.end_to_end_latency = Histogram(
            f"{PREFIX}_end_to_end_latency_seconds",
            "From a review's created_at to its sentiment event being acknowledged.",
            buckets=_END_TO_END,
            registry=r,
        )
        self.sink_retries = Counter(
            f"{PREFIX}_sink_retries",
            "Retried attempts of a sink step, by step (clickhouse, produce, dead_letter, model).",
            ["step"],
            registry=r,
        )
        self.keywords_process_restarts = Counter(
            f"{PREFIX}_keywords_process_restarts",
            "Keyword child processes started in place of one that died (its batch is retried).",
            registry=r,
        )
        self.model_process_restarts = Counter(
            f"{PREFIX}_model_process_restarts",
            "Model child processes started in place of one that died (its batch is retried).",
            registry=r,
        )
        self.dead_letter_share = Gauge(
            f"{PREFIX}_dead_letter_share",
            "Share of the DLQ-limit window that was dead-lettered.",
            registry=r,
        )
        self.model_info = Info(f"{PREFIX}_model", "The sentiment model being served.", registry=r)
        self.model_reloads = Counter(
            f"{PREFIX}_model_reloads",
            "Model versions hot-loaded or refused (failed to load or the canary), by role "
            "(served, shadow) and outcome (loaded, refused).",
            ["role", "outcome"],
            registry=r,
        )
        self.shadow_info = Info(
            f"{PREFIX}_shadow", "The candidate model in shadow (version empty: none).", registry=r
        )
        self.shadow_reviews = Counter(
            f"{PREFIX}_shadow_reviews",
            "Reviews given to the shadow candidate, by outcome (scored; dropped: queue full; "
            "expired: waited past shadow-timeout-s; failed: the candidate or the insert raised).",
            ["outcome"],
            registry=r,
        )
        self.shadow_latency = Histogram(
            f"{PREFIX}_shadow_latency_seconds",
            "The shadow candidate's forward pass per shadow batch.",
            buckets=_FAST,
            registry=r,
        )
        self.shadow_queue = Gauge(
            f"{PREFIX}_shadow_queue_batches", "Batches waiting for the shadow.", registry=r
        )
        self.shadow_stalled = Gauge(
            f"{PREFIX}_shadow_stalled",
            "1 while a shadow batch has run longer than shadow-timeout-s.",
            registry=r,
        )
        self.predict_requests = Counter(
            f"{PREFIX}_predict_requests",
            "POST /predict requests, by outcome (ok; bad_request; too_large: body over "
            "predict-max-body-bytes; busy: predict-queue full, 429; timeout: 503; starting: the "
            "model is still loading, 503).",
            ["outcome"],
            registry=r,
        )
        self.predict_in_flight = Gauge(
            f"{PREFIX}_predict_in_flight",
            "POST /predict requests running or waiting for the model.",
            registry=r,
        )
        self.consumer_lag_messages = Gauge(
            f"{PREFIX}_consumer_lag_messages",
            "Input messages not yet committed by the group, per partition assigned to this "
            "member (last measured every lag-interval-s).",
            ["topic", "partition"],
            registry=r,
        )
        self.consumer_lag_seconds = Gauge(
            f"{PREFIX}_consumer_lag_seconds",
            "Age of the oldest uncommitted input message (0: none), per assigned partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.consumer_lag_failures = Counter(
            f"{PREFIX}_consumer_lag_failures",
            "Consumer-lag measurements that failed (the broker did not answer).",
            registry=r,
        )
        self.assigned_partitions = Gauge(
            f"{PREFIX}_assigned_partitions",
            "Input partitions assigned to this member.",
            registry=r,
        )
        self.batch_idle_seconds = Gauge(
            f"{PREFIX}_batch_idle_seconds",
            "Seconds since this member last finished a batch (or was assigned partitions).",
            registry=r,
        )
        self.batch_in_hand_seconds = Gauge(
            f"{PREFIX}_batch_in_hand_seconds",
            "How long the oldest batch in hand (taken, not yet acked) has taken so far (0: none).",
            registry=r,
        )
        self.batches_in_flight = Gauge(
            f"{PREFIX}_batches_in_flight",
            "Batches taken and not yet acked (at most max-inflight-batches): classified, or "
            "waiting for their produce and ClickHouse insert.",
            registry=r,
        )
        self.backpressure_seconds = Counter(
            f"{PREFIX}_backpressure_seconds",
            "Time the agent waited for a free in-flight slot before taking the next batch: "
            "the sinks (ClickHouse, the broker) were the bottleneck.",
            registry=r,
        )
        self.batches_stalled = Gauge(
            f"{PREFIX}_batches_stalled",
            "1 while assigned partitions have lag and no batch finished for health-stall-s.",
            registry=r,
        )
        self.rating_agreement = Gauge(
            f"{PREFIX}_rating_agreement",
            "Share of rated reviews whose model sentiment is the rating's label (4-5 positive, "
            "3 neutral, 1-2 negative) over the last monitor-agreement-minutes, by model version.",
            ["model_version"],
            registry=r,
        )
        self.rated_reviews = Gauge(
            f"{PREFIX}_rated_reviews",
            "Rated reviews behind reviewpulse_rating_agreement, by model version.",
            ["model_version"],
            registry=r,
        )
        self.alerts_raised = Counter(
            f"{PREFIX}_alerts_raised", "Quality alerts raised, by kind.", ["kind"], registry=r
        )
        self.alert_evaluation_seconds = Histogram(
            f"{PREFIX}_alert_evaluation_latency_seconds",
            "One evaluation of all alert rules.",
            buckets=_FAST,
            registry=r,
        )
        self.alert_evaluation_failures = Counter(
            f"{PREFIX}_alert_evaluation_failures",
            "Alert evaluations that failed (ClickHouse or the broker); retried at the next tick.",
            registry=r,
        )
        self.alert_evaluator = Gauge(
            f"{PREFIX}_alert_evaluator",
            "1 on the one group member that evaluates the alert rules, 0 on the others.",
            registry=r,
        )
        self.pipeline_lag_seconds = Gauge(
            f"{PREFIX}_pipeline_lag_seconds",
            "How long the oldest unprocessed input message has waited (0: none), as the alert "
            "evaluator last measured it.",
            registry=r,
        )

    def add_stage_cpu(self, seconds: Mapping[str, float]) -> None:
        """Add thread CPU seconds by stage (any thread may call it)."""
        for stage, value in seconds.items():
            self.stage_cpu.labels(stage).inc(max(value, 0.0))

    def exposition(self) -> tuple[bytes, str]:
        """Prometheus text format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class Charged:
    """Await ``awaitable``, passing ``charge`` the event-loop thread's CPU time spent while
    its own steps ran (each step between two suspensions), so the other tasks that run while it
    waits are not counted in it."""

    def __init__(self, awaitable: Awaitable[Any], charge: Callable[[float], None]) -> None:
        self.awaitable = awaitable
        self.charge = charge

    def __await__(self) -> Generator[Any, Any, Any]:
        steps = self.awaitable.__await__()
        spent = 0.0
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                started = time.thread_time()
                try:
                    yielded = steps.throw(error) if error is not None else steps.send(value)
                except StopIteration as done:
                    spent += time.thread_time() - started
                    return done.value
                spent += time.thread_time() - started
                try:
                    value, error = (yield yielded), None
                except GeneratorExit:
                    steps.close()
                    raise
                except BaseException as exc:  # a cancellation goes to the awaitable
                    value, error = None, exc
        finally:
            self.charge(spent)


def read_samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name`` in Prometheus text ``text``, keyed by its sorted labels
    (``()`` for an unlabelled one). Counters' samples end in ``_total``."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def sample_total(text: str, name: str) -> float:
    """The sum of every sample called ``name`` (all label sets); 0 when there is none."""
    return sum(read_samples(text, name).values())
