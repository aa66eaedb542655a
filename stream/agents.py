"""The review agent: Faust micro-batches from ``review.created`` into the batch chain.

The agent takes batches with ``noack_take`` (Faust acks nothing by itself) and submits each
to ``BatchChain.submit``, which validates and classifies it and returns once the in-flight
window has room for the next one, while the batch's sinks run on. The chain acks a batch
(``stream.ack`` of its events, in take order) only once its outputs and those of every batch
taken before it are durable; when that cannot be done it leaves the process without acking
(ARCHITECTURE.md, "Rules"). Acks are never given from a ``finally:``.

Acks stay contiguous and in order only with one actor per agent: Faust commits the wrong
offset when acks have gaps (faust-streaming issues 312 and 606), which several actors of one
agent produce. So the agent runs with concurrency 1 and no isolated partitions, and
``require_single_actor`` refuses an app where any agent is configured otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import partial
from typing import Any, cast

import faust
from faust.types import EventT

from stream.context import WorkerContext
from stream.kafka import raw_topic, send_and_await
from stream.pipeline.chain import BatchChain
from stream.pipeline.dlq_state import DlqWindowFile, window_path
from stream.pipeline.inflight import InflightWindow
from stream.pipeline.poison import InflightMarker, PoisonGuard, marker_path
from stream.pipeline.retry import Retrying, RetryPolicy
from stream.pipeline.steps import (
    Classify,
    Incoming,
    PublishDeadLetters,
    PublishSentiments,
    Sender,
    StoreRows,
    Validate,
)
from stream.sink.crashes import CrashLedger

# One actor: see the module docstring. Raising it breaks the commit rule.
REVIEW_AGENT_CONCURRENCY = 1


class UnsafeAgentConcurrency(RuntimeError):
    """An agent would run several actors, so acked offsets could be committed too early."""


def require_single_actor(app: faust.App) -> None:
    """Raise :class:`UnsafeAgentConcurrency` if any agent of ``app`` has concurrency above 1
    or isolated partitions (one actor per partition)."""
    for name, agent in app.agents.items():
        if agent.concurrency != 1 or agent.isolated_partitions:
            raise UnsafeAgentConcurrency(
                f"agent {name} has concurrency {agent.concurrency}"
                f"{' and isolated partitions' if agent.isolated_partitions else ''}: the worker "
                "needs exactly one actor per agent, or Faust can commit offsets of batches that "
                "are not durable yet (faust-streaming #312, #606). Scale out with more worker "
                "processes instead."
            )


def register_review_agent(app: faust.App, context: WorkerContext) -> BatchChain:
    """Add the agent to ``app`` (one actor, checked); returns the chain it feeds."""
    kafka, batch = context.config.kafka, context.config.batch
    chain = build_chain(
        context,
        send_sentiments=partial(send_and_await, raw_topic(app, kafka.output_topic)),
        send_dead_letters=partial(send_and_await, raw_topic(app, kafka.dlq_topic)),
    )

    async def review_agent(stream: faust.StreamT) -> None:
        heartbeat = context.heartbeat  # /health/live, /health/ready, POST /predict's gate
        await context.startup.wait()  # no batch before the model, jieba and ClickHouse
        try:
            async for events in stream.noack_take(batch.batch_size, within=batch.batch_within_s):
                heartbeat.batch_started()
                taken = cast(list[EventT], events)  # noack_take yields the events themselves
                await chain.submit(
                    [incoming(event) for event in taken], partial(ack_events, stream, taken)
                )
            await chain.drain()
        except asyncio.CancelledError:
            chain.interrupted()  # batches in flight are not acked: stop, as mid-batch
            raise

    async def ack_events(stream: faust.StreamT, events: list[EventT]) -> None:
        for event in events:
            await stream.ack(event)
        context.heartbeat.batch_done()

    app.agent(
        raw_topic(app, kafka.input_topic),
        name="reviewpulse.reviews",
        concurrency=REVIEW_AGENT_CONCURRENCY,
    )(review_agent)
    require_single_actor(app)
    return chain


def build_chain(
    context: WorkerContext, *, send_sentiments: Sender, send_dead_letters: Sender
) -> BatchChain:
    """The batch chain over ``context``'s resources; model and sink steps retry by policy.
    The model comes from ``context.models`` once per batch (hot reload swaps it between
    batches); ``context.shadow`` gets a copy of each classified batch, never waited for.
    At most ``max_inflight_batches`` batches are between take and ack. The DLQ limit's
    window and the in-flight marker of the poison guard live beside Faust's data; crash
    counts live in ClickHouse (``message_crashes``)."""
    metrics = context.metrics
    policy = RetryPolicy.of(context.config.batch)
    kafka = context.config.kafka
    window = InflightWindow(context.config.batch.max_inflight_batches)
    # Crash lookups on their own connection and thread: never behind the last batch's insert.
    ledger, ledger_executor = context.clickhouse, context.clickhouse_executor
    if context.ledger_clickhouse is not None:
        ledger, ledger_executor = context.ledger_clickhouse, context.ledger_executor
    metrics.batches_in_flight.set_function(lambda: len(window))
    return BatchChain(
        window=window,
        validate=Validate(
            context.config.batch,
            metrics,
            window=DlqWindowFile(window_path(kafka.worker_data_dir, kafka.app_id)),
        ),
        poison=PoisonGuard(
            CrashLedger(ledger),
            InflightMarker(marker_path(kafka.worker_data_dir, kafka.app_id)),
            ledger_executor,
            limit=context.config.batch.poison_crash_limit,
        ),
        dead_letter=Retrying(
            "dead_letter", PublishDeadLetters(send_dead_letters, metrics), policy, metrics
        ),
        classify=Retrying(
            "model",
            Classify(
                context.models,
                context.terms,
                run_model=context.inference,
                metrics=metrics,
                shadow=context.shadow,
            ),
            policy,
            metrics,
        ),
        publish=Retrying("produce", PublishSentiments(send_sentiments, metrics), policy, metrics),
        store=Retrying(
            "clickhouse",
            StoreRows(context.store, context.clickhouse_executor, metrics),
            policy,
            metrics,
        ),
        metrics=metrics,
        stop=context.stop,
    )


def incoming(event: EventT) -> Incoming:
    """A Faust event as the chain's plain :class:`Incoming` message."""
    message = event.message
    return Incoming(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=_headers(message.headers),
    )


def _headers(raw: Any) -> tuple[tuple[str, bytes | None], ...]:
    if not raw:
        return ()
    items = raw.items() if isinstance(raw, Mapping) else raw
    return tuple((str(key), _header_value(value)) for key, value in items)


def _header_value(value: Any) -> bytes | None:
    """Header values as bytes whatever the client handed over (the chain never sees a
    type it cannot dead-letter)."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace")
    return bytes(value) if isinstance(value, bytearray | memoryview) else str(value).encode()
