"""Fakes below the chain's boundary: the model, the store and the topics it sends to."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from stream.kafka import Outgoing
from stream.pipeline.steps import Incoming


@dataclass(frozen=True)
class FakePrediction:
    label: str = "positive"
    confidence: float = 0.8
    probabilities: dict = field(
        default_factory=lambda: {"negative": 0.1, "neutral": 0.1, "positive": 0.8}
    )


class FakeModel:
    version = "fake-1"
    runtime = "fake"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict_cleaned(self, texts: Sequence[str], cpu: object = None) -> list[FakePrediction]:
        self.calls.append(len(texts))
        return [FakePrediction() for _ in texts]


class GatedModel(FakeModel):
    """A model that labels every text ``label``; it waits for ``gate`` first (when given,
    signalling ``started``) and raises ``error`` (when set)."""

    def __init__(
        self,
        version: str = "cand-2",
        *,
        label: str = "negative",
        gate: threading.Event | None = None,
        error: Exception | None = None,
    ) -> None:
        super().__init__()
        self.version, self.label, self.gate, self.error = version, label, gate, error
        self.started = threading.Event()

    def predict_cleaned(self, texts: Sequence[str], cpu: object = None) -> list[FakePrediction]:
        self.calls.append(len(texts))
        self.started.set()
        if self.gate is not None:
            self.gate.wait(30)
        if self.error is not None:
            raise self.error
        probabilities = {name: 0.1 for name in ("negative", "neutral", "positive")}
        probabilities[self.label] = 0.8
        return [FakePrediction(self.label, 0.8, probabilities) for _ in texts]


class FakeSender:
    """A topic send that fails ``fail`` times, then journals what it was given."""

    def __init__(self, name: str, journal: list, fail: int = 0) -> None:
        self.name, self.journal, self.fail = name, journal, fail

    async def __call__(self, messages: Sequence[Outgoing]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("broker down")
        self.journal.extend((self.name, key, value) for key, value, _ in messages)


class FakeStore:
    def __init__(self, journal: list, fail: int = 0) -> None:
        self.journal, self.fail = journal, fail
        self.tokens: list[str | None] = []

    def write_reviews(self, rows, *, token: str | None = None) -> int:
        self.tokens.append(token)
        if self.fail:
            self.fail -= 1
            raise ConnectionError("clickhouse down")
        self.journal.append(("clickhouse", len(rows)))
        return len(rows)


def review_bytes(i: int, **fields) -> bytes:
    return json.dumps(
        {
            "schema_version": 1,
            "review_id": f"r-{i}",
            "product_id": f"p-{i % 3}",
            "category": "手机",
            "user_id": "u",
            "text": "屏幕很好",
            "created_at": "2026-11-27T05:00:00Z",
            **fields,
        }
    ).encode()


def incoming(values: list[bytes | None]) -> list[Incoming]:
    return [
        Incoming(topic="review.created", partition=0, offset=i, key=b"p-1", value=value)
        for i, value in enumerate(values)
    ]
