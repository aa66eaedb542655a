"""The worker's consumer hands a message to the streams without Faust's per-message race when
the delivery completes at once, and races it as Faust does when the delivery has to wait
(stream.faust_extensions.DirectDeliveryConsumer). On the consumer the app really builds; the
deliveries are coroutines like the conductor's, putting into a real bounded asyncio queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from stream.app import create_app
from stream.config import WorkerConfig
from stream.faust_extensions import DirectDeliveryConsumer, FlowSuspension


@pytest.fixture
def new_consumer(
    make_config: Callable[..., WorkerConfig],
) -> Callable[[], DirectDeliveryConsumer]:
    """Builds the app's consumer; called in the test's running loop, which becomes its."""
    config = make_config()

    def build() -> DirectDeliveryConsumer:
        consumer = create_app(config.kafka, config.batch, config.web).consumer
        assert consumer.loop is asyncio.get_running_loop()
        assert isinstance(consumer, DirectDeliveryConsumer)
        assert isinstance(consumer.suspend_flow, FlowSuspension)
        return consumer

    return build


@contextmanager
def tasks_created() -> Iterator[list[str]]:
    """The coroutine names of the tasks the running loop creates meanwhile."""
    loop = asyncio.get_running_loop()
    created: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Coroutine, **kwargs: Any) -> asyncio.Task:
        created.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    previous = loop.get_task_factory()
    loop.set_task_factory(factory)
    try:
        yield created
    finally:
        loop.set_task_factory(previous)


def deliver_to(queue: asyncio.Queue[int]) -> Callable[[int], Coroutine[Any, Any, str]]:
    async def deliver(value: int) -> str:
        await queue.put(value)  # suspends only when the queue is full
        return f"delivered {value}"

    return deliver


def test_a_delivery_with_room_runs_without_a_race(
    new_consumer: Callable[[], DirectDeliveryConsumer],
) -> None:
    async def scenario() -> tuple[list[str], list[Any], list[int]]:
        consumer = new_consumer()
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=8)
        deliver = deliver_to(queue)
        with tasks_created() as created:
            outcomes = [
                await consumer.wait_first(deliver(value), consumer.suspend_flow.wait())
                for value in range(3)
            ]
        return created, outcomes, [queue.get_nowait() for _ in range(queue.qsize())]

    created, outcomes, queued = asyncio.run(scenario())
    assert created == []  # no task, no wait, nothing to cancel
    assert queued == [0, 1, 2]
    assert [outcome.results for outcome in outcomes] == [[f"delivered {v}"] for v in range(3)]
    assert not any(outcome.stopped for outcome in outcomes)


def test_a_delivery_that_waits_for_room_completes_when_room_comes(
    new_consumer: Callable[[], DirectDeliveryConsumer],
) -> None:
    async def scenario() -> tuple[list[str], Any, list[int]]:
        consumer = new_consumer()
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        queue.put_nowait(0)
        asyncio.get_running_loop().call_later(0.05, queue.get_nowait)  # the stream takes one
        with tasks_created() as created:
            outcome = await consumer.wait_first(deliver_to(queue)(1), consumer.suspend_flow.wait())
        return created, outcome, [queue.get_nowait() for _ in range(queue.qsize())]

    created, outcome, queued = asyncio.run(scenario())
    assert created  # raced as Faust does
    assert outcome.results == ["delivered 1"] and not outcome.stopped
    assert queued == [1]


def test_a_waiting_delivery_is_cut_short_when_the_flow_is_suspended(
    new_consumer: Callable[[], DirectDeliveryConsumer],
) -> None:
    """A rebalance (``stop_flow``) while the stream's buffer is full ends the wait; the
    message is not delivered."""

    async def scenario() -> tuple[Any, list[int]]:
        consumer = new_consumer()
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        queue.put_nowait(0)
        asyncio.get_running_loop().call_later(0.05, consumer.stop_flow)
        outcome = await asyncio.wait_for(
            consumer.wait_first(deliver_to(queue)(1), consumer.suspend_flow.wait()), timeout=5
        )
        await asyncio.sleep(0.05)  # the cancelled delivery has had its turn
        return outcome, [queue.get_nowait() for _ in range(queue.qsize())]

    outcome, queued = asyncio.run(scenario())
    assert outcome.results == [True]  # the flow's wait won
    assert queued == [0]


def test_a_suspended_flow_takes_fausts_race(
    new_consumer: Callable[[], DirectDeliveryConsumer],
) -> None:
    async def scenario() -> tuple[list[str], Any]:
        consumer = new_consumer()
        consumer.stop_flow()
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        queue.put_nowait(0)
        with tasks_created() as created:
            outcome = await consumer.wait_first(deliver_to(queue)(1), consumer.suspend_flow.wait())
        return created, outcome

    created, outcome = asyncio.run(scenario())
    assert created
    assert outcome.results == [True]
