"""The review agent runs one actor: Faust's offset tracking is safe only then (#312, #606)."""

from __future__ import annotations

import faust
import pytest

from stream.agents import (
    REVIEW_AGENT_CONCURRENCY,
    UnsafeAgentConcurrency,
    register_review_agent,
    require_single_actor,
)
from stream.app import create_app
from stream.config import WorkerConfig
from stream.context import WorkerContext
from stream.metrics import Metrics
from stream.serving.holder import ModelHolder
from tests.stream.pipeline.fakes import FakeModel, FakeStore


def worker_parts() -> tuple[faust.App, WorkerContext]:
    config = WorkerConfig.resolve()

    def stop(code: int, message: str):
        raise AssertionError(f"no batch runs here: {code} {message}")

    context = WorkerContext(
        config=config,
        models=ModelHolder(FakeModel(), follows_current=True),
        clickhouse=None,  # type: ignore[arg-type]  # registration touches no resource
        store=FakeStore([], 0),
        terms=None,  # type: ignore[arg-type]
        metrics=Metrics(),
        shadow=None,
        stop=stop,
    )
    return create_app(config.kafka, config.batch, config.web), context


def test_the_review_agent_runs_one_actor() -> None:
    app, context = worker_parts()
    register_review_agent(app, context)
    agent = app.agents["reviewpulse.reviews"]
    assert REVIEW_AGENT_CONCURRENCY == 1
    assert (agent.concurrency, agent.isolated_partitions) == (1, False)
    require_single_actor(app)  # the app as built passes


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency": 2}, "has concurrency 2"),
        ({"isolated_partitions": True}, "isolated partitions"),
    ],
)
def test_an_agent_with_more_actors_is_refused(options: dict, message: str) -> None:
    app, context = worker_parts()
    register_review_agent(app, context)

    async def other(stream: faust.StreamT) -> None:
        async for _ in stream:
            pass

    app.agent(app.topic("other"), name="reviewpulse.other", **options)(other)
    with pytest.raises(UnsafeAgentConcurrency, match=message) as refused:
        require_single_actor(app)
    assert "reviewpulse.other" in str(refused.value) and "#606" in str(refused.value)


def test_registering_refuses_a_raised_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone edits the constant: the worker refuses to build instead of running unsafely."""
    import stream.agents

    monkeypatch.setattr(stream.agents, "REVIEW_AGENT_CONCURRENCY", 4)
    app, context = worker_parts()
    with pytest.raises(UnsafeAgentConcurrency, match=r"reviewpulse\.reviews has concurrency 4"):
        register_review_agent(app, context)
