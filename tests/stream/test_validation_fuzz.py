"""A seeded fuzz corpus through the real validation step: nothing may raise, every message
becomes either a valid review or a dead letter, and every output can be encoded (the dead
letter, and for valid reviews the ``review.sentiment`` event and the ``reviews`` row)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import schemas
from stream.config import BatchConfig
from stream.events import to_json_bytes
from stream.keywords import Keywords
from stream.metrics import Metrics
from stream.pipeline.steps import Incoming, Validate
from stream.rows import ClassifiedReview, build_review_row, build_sentiment_event
from tests.stream.pipeline.fakes import FakePrediction

NOW = datetime(2026, 11, 27, 5, 0, 30, tzinfo=UTC)
SEED = 20261127
CASES = 4000

FIELDS = ("schema_version", "review_id", "product_id", "category", "user_id", "rating", "text")
ODD_VALUES: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    1.0,
    1.5,
    2**70,
    -(2**63),
    "",
    " ",
    "\u200b",
    "\ud800",
    "\udfff",
    "a\x00b",
    "好" * 300,
    [],
    {},
    [1, [2, [3]]],
    {"a": {"b": {}}},
    "1",
    "NaN",
    1e308,
    -0.0,
    "2026-11-27T05:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-23:59",
    "2026-02-30T00:00:00Z",
    "2026-11-27T05:00:00.123456789+08:00",
    "2100-01-01T00:00:00Z",
]
TOKENS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b'"',
    b"\\",
    b"\\u",
    b"\\ud800",
    b"NaN",
    b"-",
    b"1e999",
    b"9" * 5000,
    b"\xff",
    b"\xc3",
    b"\x00",
    b"null",
    b"true",
    b"\xef\xbb\xbf",
]


def good(rng: random.Random) -> dict:
    return {
        "schema_version": 1,
        "review_id": f"r-{rng.randrange(10**6)}",
        "product_id": f"p-{rng.randrange(50)}",
        "category": rng.choice(["手机", "服装", "食品"]),
        "user_id": "u",
        "rating": rng.choice([None, 1, 3, 5]),
        "text": rng.choice(["屏幕很清晰", "质量差，退货", "一般般", "  <b>好</b> https://x.y "]),
        "created_at": "2026-11-27T05:00:00Z",
    }


def mutate_structure(rng: random.Random) -> bytes:
    payload = good(rng)
    for _ in range(rng.randint(1, 3)):
        field = rng.choice((*FIELDS, "created_at", "extra"))
        roll = rng.random()
        if roll < 0.2:
            payload.pop(field, None)
        elif roll < 0.8:
            payload[field] = rng.choice(ODD_VALUES)
        else:
            nested: list = []
            for _ in range(rng.choice([5, 31, 33, 200, 2000])):
                nested = [nested]
            payload[field] = nested
    try:
        return json.dumps(payload, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    except (RecursionError, ValueError):
        return b"[" * 5000


def mutate_bytes(rng: random.Random) -> bytes:
    data = bytearray(json.dumps(good(rng), ensure_ascii=False).encode())
    for _ in range(rng.randint(1, 6)):
        roll = rng.random()
        position = rng.randrange(len(data) + 1)
        if roll < 0.4:
            data[position:position] = rng.choice(TOKENS)
        elif roll < 0.7 and data:
            del data[position : position + rng.randint(1, 8)]
        elif data:
            data[min(position, len(data) - 1)] = rng.randrange(256)
    return bytes(data)


def random_bytes(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))


def corpus(seed: int = SEED, size: int = CASES) -> list[bytes | None]:
    rng = random.Random(seed)
    makers = [mutate_structure] * 5 + [mutate_bytes] * 4 + [random_bytes]
    values: list[bytes | None] = [None, b"", b"null", b"[]", b'"x"', b"1" * 300_000]
    values += [rng.choice(makers)(rng) for _ in range(size)]
    return values


PREDICTION = FakePrediction("negative", 0.9, {"negative": 0.9, "neutral": 0.05, "positive": 0.05})


def test_fuzz_corpus_never_raises_and_every_output_encodes() -> None:
    # The DLQ limit is judged elsewhere; a corpus this hostile would trip it.
    step = Validate(BatchConfig(dlq_limit_ratio=1.0), Metrics(), clock=lambda: NOW)
    values = corpus()
    messages = [
        Incoming("review.created", i % 4, i, None if i % 7 else b"\xff" * 3, value)
        for i, value in enumerate(values)
    ]
    valid, dead = [], []
    for start in range(0, len(messages), 250):  # batches, as the worker takes them
        batch = step(messages[start : start + 250])
        valid += batch.valid
        dead += batch.dead
    assert len(valid) + len(dead) == len(messages)
    checker = schemas.validator("dead_letter", 1)
    for record, _ in dead:
        assert list(checker.iter_errors(json.loads(to_json_bytes(record)))) == []
    keywords = Keywords.load()
    for review in valid:
        terms = keywords.extract(review.clean_text)
        classified = ClassifiedReview.of(
            review, terms, PREDICTION, model_version="m", processed_at=NOW
        )
        to_json_bytes(build_sentiment_event(classified))
        build_review_row(classified)
    reasons = {record.reason for record, _ in dead}
    # The corpus reaches far: most reason codes occur, and some reviews still get through.
    assert {"malformed_json", "missing_field", "wrong_type", "bad_timestamp"} <= reasons
    assert {"invalid_unicode", "unknown_schema_version", "event_too_large"} <= reasons
    assert len(valid) > 100
