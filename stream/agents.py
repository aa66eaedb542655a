"""The review agent: Faust micro-batches from ``review.created`` into the batch chain.

``take_events`` acks in a ``finally:``; ``BatchChain.process`` returns only once the batch's
outputs are durable and otherwise leaves the process without returning (ARCHITECTURE.md,
"Rules"), so a batch is acked exactly when it is safe to.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import faust
from faust.types import EventT

from stream.context import WorkerContext
from stream.kafka import raw_topic, send_and_await
from stream.pipeline.chain import BatchChain
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


def register_review_agent(app: faust.App, context: WorkerContext) -> BatchChain:
    """Add the agent to ``app``; returns the chain it feeds."""
    kafka, batch = context.config.kafka, context.config.batch
    chain = build_chain(
        context,
        send_sentiments=partial(send_and_await, raw_topic(app, kafka.output_topic)),
        send_dead_letters=partial(send_and_await, raw_topic(app, kafka.dlq_topic)),
    )

    async def review_agent(stream: faust.StreamT) -> None:
        async for events in stream.take_events(batch.batch_size, within=batch.batch_within_s):
            await chain.process([incoming(event) for event in events])

    app.agent(raw_topic(app, kafka.input_topic), name="reviewpulse.reviews")(review_agent)
    return chain


def build_chain(
    context: WorkerContext, *, send_sentiments: Sender, send_dead_letters: Sender
) -> BatchChain:
    """The batch chain over ``context``'s resources; model and sink steps retry by policy.
    The model comes from ``context.models`` once per batch (hot reload swaps it between
    batches); ``context.shadow`` gets a copy of each classified batch, never waited for."""
    metrics = context.metrics
    policy = RetryPolicy.of(context.config.batch)
    return BatchChain(
        validate=Validate(context.config.batch, metrics),
        dead_letter=Retrying(
            "dead_letter", PublishDeadLetters(send_dead_letters, metrics), policy, metrics
        ),
        classify=Retrying(
            "model",
            Classify(
                context.models,
                context.keywords,
                model_executor=context.model_executor,
                keywords_executor=context.keywords_executor,
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
    return tuple((str(key), value) for key, value in items)
