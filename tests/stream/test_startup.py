"""The worker's start-up beside Faust's (stream.startup): parts run one at a time, each on
its resource's thread; the agent's wait returns only once all are done, and a failed part
stops the worker; until then the model is "starting" for /health, /health/ready and
POST /predict. The service-backed part (a real model, jieba and chdb) is marked."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stream.config import WorkerConfig
from stream.health import Heartbeat, readiness
from stream.keywords import Keywords
from stream.metrics import Metrics
from stream.pipeline.extraction import KeywordsProcess
from stream.predict import PredictRefused, PredictService
from stream.serving.holder import ModelHolder, ModelNotLoaded
from stream.startup import EXIT_STARTUP_FAILED, PreparedClickHouse, PreparedKeywords, Startup
from tests.stream.pipeline.fakes import FakeModel


class Stopped(Exception):
    pass


class Stops:
    """A fake ``stop``: records the call and raises instead of leaving the process."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def __call__(self, code: int, message: str):
        self.calls.append((code, message))
        raise Stopped(message)


@pytest.fixture
def threads():
    pools = {name: ThreadPoolExecutor(1, thread_name_prefix=name) for name in ("a", "b", "c")}
    yield pools
    for pool in pools.values():
        pool.shutdown(wait=True, cancel_futures=True)


def test_parts_run_in_turn_each_on_its_thread(threads: dict[str, ThreadPoolExecutor]) -> None:
    seen: list[tuple[str, str]] = []
    gate = threading.Event()

    def work(name: str, wait: threading.Event | None = None) -> Callable[[], str]:
        def run() -> str:
            if wait is not None:
                assert wait.wait(10)
            seen.append((name, threading.current_thread().name.split("_")[0]))
            return name

        return run

    startup = Startup(stop=Stops())
    startup.begin(
        ("clickhouse", threads["a"], work("clickhouse", gate)),
        ("model", threads["b"], work("model")),
        ("keywords", threads["c"], work("keywords")),
    )
    assert startup.status() == {
        "status": "starting",
        "parts": {"clickhouse": "starting", "model": "starting", "keywords": "starting"},
    }
    assert not startup.done and seen == []  # the model waits for ClickHouse: one at a time

    async def waits() -> None:
        waiting = asyncio.create_task(startup.wait())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the agent takes no batch yet
        gate.set()
        await asyncio.wait_for(waiting, 10)

    asyncio.run(waits())
    assert seen == [("clickhouse", "a"), ("model", "b"), ("keywords", "c")]
    assert startup.done
    status = startup.status()
    assert status["status"] == "ok"
    assert all(text.startswith("ok in ") for text in status["parts"].values())
    assert str(startup).startswith("clickhouse ") and "keywords" in str(startup)


def test_a_failed_part_stops_the_worker_and_reads_down(
    threads: dict[str, ThreadPoolExecutor],
) -> None:
    stops = Stops()

    def no_schema() -> None:
        raise RuntimeError("ClickHouse database 'x' has no reviews table")

    startup = Startup(stop=stops)
    ran: list[str] = []
    startup.begin(
        ("clickhouse", threads["a"], no_schema), ("model", threads["b"], lambda: ran.append("m"))
    )
    with pytest.raises(Stopped):
        asyncio.run(startup.wait())
    assert stops.calls == [
        (
            EXIT_STARTUP_FAILED,
            "start-up failed: clickhouse: ClickHouse database 'x' has no reviews table",
        )
    ]
    status = startup.status()
    assert status["status"] == "down"
    assert status["parts"]["clickhouse"].startswith("failed: RuntimeError(")
    assert not startup.done


def test_a_context_built_whole_is_started() -> None:
    startup = Startup()
    assert startup.done and startup.status() == {"status": "ok", "parts": {}}
    asyncio.run(startup.wait())  # returns at once


def test_readiness_waits_for_the_startup() -> None:
    heartbeat = Heartbeat()
    deps = {"broker": {"status": "ok"}, "clickhouse": {"status": "ok"}}
    starting = {"status": "starting", "parts": {"model": "starting"}}
    body = readiness(
        heartbeat=heartbeat,
        assigned=["t[0]"],
        lag={},
        dependencies={**deps, "startup": starting},
        stall_s=60,
    )
    assert body["status"] == "down" and body["reasons"] == ["startup is starting"]
    assert body["startup"]["parts"] == {"model": "starting"}


def test_the_holder_serves_nothing_until_the_model_is_installed() -> None:
    holder = ModelHolder(None, follows_current=True)
    assert not holder.loaded
    with pytest.raises(ModelNotLoaded):
        holder.current  # noqa: B018
    assert holder.status() == {"status": "starting", "follows": "current"}
    model = FakeModel()
    holder.install(model)
    assert holder.loaded and holder.current is model and holder.status()["status"] == "ok"
    with pytest.raises(RuntimeError, match="swap it instead"):
        holder.install(FakeModel())


def test_predict_answers_503_while_the_model_loads() -> None:
    config = WorkerConfig.resolve()
    with ThreadPoolExecutor(1) as executor:
        service = PredictService(
            ModelHolder(None, follows_current=True),
            config.web,
            max_text_chars=config.batch.max_text_chars,
            executor=executor,
            stream_model=Heartbeat(),
            metrics=Metrics(),
        )
        with pytest.raises(PredictRefused) as refused:
            asyncio.run(service.answer(b'{"texts": ["good"]}'))
    assert (refused.value.status, refused.value.outcome) == (503, "starting")


def test_prepared_keywords_are_jiebas_keywords() -> None:
    prepared = PreparedKeywords(limit=5)
    text = "包装破损，质量很差，客服态度还可以"
    loaded = prepared.prepare()
    assert prepared.prepare() is loaded  # built once
    assert prepared.extract(text) == Keywords.load(limit=5).extract(text)


def test_prepared_clickhouse_knows_its_database_without_connecting() -> None:
    config = WorkerConfig.resolve(
        clickhouse_backend="native", clickhouse_database="rp_db", clickhouse_cluster="c2"
    )

    def refuse():
        raise AssertionError("connected on the wrong thread")

    native = PreparedClickHouse(config.clickhouse, refuse)
    assert (native.database, native.cluster) == ("rp_db", "c2")
    embedded = WorkerConfig.resolve(clickhouse_database="rp_db", clickhouse_backend="embedded")
    assert PreparedClickHouse(embedded.clickhouse, refuse).cluster == ""


@pytest.mark.clickhouse
def test_prepare_loads_the_model_jieba_and_migrates(
    make_config: Callable[..., WorkerConfig],
) -> None:
    """The real parts (model, jieba, embedded chdb); then --no-migrate's schema check on a
    fresh server database stops the worker."""
    from stream.context import WorkerContext

    context = WorkerContext.create(
        make_config(clickhouse_backend="embedded", model_reload_interval_s=0)
    )
    try:
        assert not context.models.loaded
        context.prepare(migrate=True)
        asyncio.run(asyncio.wait_for(context.startup.wait(), 120))
        assert context.startup.done and context.models.loaded
        assert context.clickhouse.query("EXISTS TABLE reviews")[0][0] == 1
        # jieba was loaded in the keywords process (the default executor), not here.
        assert isinstance(context.terms, KeywordsProcess) and context.terms.pid
        terms, _ = asyncio.run(context.terms(["质量很差，漏水了"]))
        assert terms[0].keywords
    finally:
        context.close()

    stops = Stops()
    fresh = WorkerContext.create(make_config(model_reload_interval_s=0))  # a new database
    fresh.startup.stop = stops
    try:
        fresh.prepare(migrate=False)
        with pytest.raises(Stopped):
            asyncio.run(asyncio.wait_for(fresh.startup.wait(), 120))
    finally:
        fresh.close()
    assert stops.calls[0][0] == EXIT_STARTUP_FAILED
    assert "no reviews table" in stops.calls[0][1]


@pytest.mark.broker
@pytest.mark.clickhouse
def test_a_worker_whose_model_cannot_serve_exits_1_unready(
    make_config: Callable[..., WorkerConfig], tmp_path: Path
) -> None:
    """The whole worker: the model part fails after Faust started; the worker leaves with
    code 1 and the reason, and never reported ready."""
    from stream.kafka import ensure_topics
    from stream.local.worker import WorkerProcess

    config = make_config(model_version="no-such-version")
    ensure_topics(config.kafka)
    worker = WorkerProcess(config, tmp_path / "worker.log").start()
    try:
        code = worker.wait_exit(120)
    finally:
        if worker.alive():
            worker.kill9()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert code == EXIT_STARTUP_FAILED, log[-3000:]
    assert "start-up failed: model" in log and "no-such-version" in log
    assert "[^Worker]: Ready" not in log
