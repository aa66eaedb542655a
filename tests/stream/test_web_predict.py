"""POST /predict's limits and its stream-first rule (stream.predict, stream.context).

The model below the service is a stand-in that records when it runs (the boundary under test
is the service: admission, the gate, the threads); the worker test in
tests/stream/test_health_worker.py drives the real page with the real model."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from stream.config import WebConfig
from stream.health import Heartbeat
from stream.metrics import Metrics, read_samples
from stream.predict import PIECE_TEXTS, PredictRefused, PredictService, parse_texts
from stream.serving.holder import ModelHolder


@dataclass
class Scored:
    label: str
    confidence: float
    probabilities: dict


class RecordingModel:
    """Scores instantly (or waits on ``gate``) and records each call's thread and time."""

    version = "v-test"

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, int]] = []
        self.gate: threading.Event | None = None

    def predict_cleaned(self, texts: Sequence[str]) -> list[Scored]:
        if self.gate is not None:
            self.gate.wait(10)
        self.calls.append((threading.current_thread().name, time.monotonic(), len(texts)))
        return [Scored("positive", 0.9, {"positive": 0.9}) for _ in texts]


def service(model: RecordingModel, stream_model: Heartbeat, **web: object) -> PredictService:
    return PredictService(
        ModelHolder(model, follows_current=False),  # type: ignore[arg-type]
        WebConfig(**web),
        max_text_chars=100,
        executor=ThreadPoolExecutor(1, thread_name_prefix="predict"),
        stream_model=stream_model,
        metrics=Metrics(),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[" * 5000 + b"]" * 5000, "not JSON"),  # deep nesting is a 400, not a crash
        (b'{"texts": []}', "at least one text"),
        (b'{"text": "x"}', "at least one text"),
        (b'{"texts": ["a", 1]}', "must be a string"),
        (b'{"texts": ["a", "b", "c"]}', "at most 2 texts"),
    ],
)
def test_bad_bodies_are_400(body: bytes, message: str) -> None:
    with pytest.raises(PredictRefused) as refused:
        parse_texts(body, max_texts=2)
    assert refused.value.status == 400 and message in str(refused.value)


def test_heartbeat_is_idle_between_batches() -> None:
    heartbeat = Heartbeat()
    assert heartbeat.wait_idle(0)
    heartbeat.batch_started()
    assert not heartbeat.wait_idle(0.05)
    threading.Timer(0.1, heartbeat.batch_done).start()
    assert heartbeat.wait_idle(2)


def test_requests_run_on_their_own_thread_in_pieces() -> None:
    model, stream_model = RecordingModel(), Heartbeat()
    predict = service(model, stream_model)
    texts = [f"评论{i}" for i in range(20)]
    answer = asyncio.run(predict.answer(str({"texts": texts}).replace("'", '"').encode()))
    assert answer["model_version"] == "v-test" and len(answer["predictions"]) == 20
    assert {thread for thread, _, _ in model.calls} == {"predict_0"}
    assert [n for _, _, n in model.calls] == [PIECE_TEXTS, PIECE_TEXTS, 20 - 2 * PIECE_TEXTS]


def test_empty_after_cleaning_is_400() -> None:
    predict = service(RecordingModel(), Heartbeat())
    with pytest.raises(PredictRefused) as refused:
        asyncio.run(predict.answer('{"texts": ["好", "   "]}'.encode()))
    assert refused.value.status == 400 and "[1]" in str(refused.value)


def test_pieces_wait_for_the_stream_and_give_up_with_503() -> None:
    model, heartbeat = RecordingModel(), Heartbeat()
    predict = service(model, heartbeat, predict_timeout_s=0.5)
    heartbeat.batch_started()  # a long stream batch
    started = time.monotonic()
    with pytest.raises(PredictRefused) as refused:
        asyncio.run(predict.answer(b'{"texts": ["good"]}'))
    assert refused.value.status == 503 and refused.value.outcome == "timeout"
    assert model.calls == [] and time.monotonic() - started >= 0.5

    finished = []

    def finish_batch() -> None:
        finished.append(time.monotonic())
        heartbeat.batch_done()

    threading.Timer(0.3, finish_batch).start()
    answer = asyncio.run(predict.answer(b'{"texts": ["good"]}'))
    assert len(answer["predictions"]) == 1
    assert model.calls[0][1] >= finished[0]  # the piece ran once the stream's batch was done


def test_a_full_queue_answers_429_at_once() -> None:
    model, stream_model = RecordingModel(), Heartbeat()
    model.gate = threading.Event()
    predict = service(model, stream_model, predict_queue=3)

    async def flood() -> list[object]:
        tasks = [asyncio.ensure_future(predict.answer(b'{"texts": ["x"]}')) for _ in range(3)]
        await asyncio.sleep(0.05)
        with pytest.raises(PredictRefused) as refused:
            await predict.answer(b'{"texts": ["x"]}')
        assert refused.value.status == 429 and refused.value.outcome == "busy"
        assert read_samples(
            predict.metrics.exposition()[0].decode(), "reviewpulse_predict_in_flight"
        ) == {(): 3.0}
        model.gate.set()  # type: ignore[union-attr]
        return await asyncio.gather(*tasks)

    answers = asyncio.run(flood())
    assert len(answers) == 3 and predict.in_flight == 0
