"""Input that used to crash the worker (issue 11) becomes a dead letter with a clear reason,
through the real validation step, and its dead-letter record can always be encoded."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import schemas
from stream.config import BatchConfig
from stream.dlq import MAX_RECORD_BYTES, build_dead_letter, dead_letter_headers
from stream.events import to_json_bytes
from stream.metrics import Metrics
from stream.pipeline.steps import Incoming, Validate
from stream.validation import InvalidEvent, parse_review

NOW = datetime(2026, 11, 27, 5, 0, 30, tzinfo=UTC)


def event(**changes) -> dict:
    base = {
        "schema_version": 1,
        "review_id": "r-1",
        "product_id": "p-1",
        "category": "手机",
        "user_id": "u-1",
        "rating": 4,
        "text": "屏幕很清晰",
        "created_at": "2026-11-27T05:00:00Z",
    }
    return {**base, **changes}


def raw(payload: dict) -> bytes:
    return json.dumps(payload).encode()


DEEP = b'{"schema_version": 1, "x": ' + b"[" * 3000 + b"]" * 3000 + b"}"
HUGE_INT = b'{"schema_version": 1, "extra": ' + b"9" * 5000 + b"}"

HOSTILE: list[tuple[str, bytes, str]] = [
    ("nested 3,000 deep (RecursionError)", DEEP, "malformed_json"),
    ("integer over 4,300 digits in an extra field", HUGE_INT, "malformed_json"),
    (
        "integer over 4,300 digits as rating",
        raw(event()).replace(b'"rating": 4', b'"rating": ' + b"7" * 4400),
        "malformed_json",
    ),
    (
        "created_at before year 1 in UTC (OverflowError)",
        raw(event(created_at="0001-01-01T00:00:00+01:00")),
        "bad_timestamp",
    ),
    (
        "created_at after year 9999 in UTC",
        raw(event(created_at="9999-12-31T23:59:59-01:00")),
        "bad_timestamp",
    ),
    ("lone surrogate in review_id", raw(event(review_id="\ud800")), "invalid_unicode"),
    ("lone surrogate in product_id", raw(event(product_id="p\udfff")), "invalid_unicode"),
    ("lone surrogate in text", raw(event(text="好\ud83d")), "invalid_unicode"),
    (
        "lone surrogate in created_at",
        raw(event(created_at="2026-11-27T05:00:00Z\ud800")),
        "invalid_unicode",
    ),
    ("schema_version 1.0", raw(event(schema_version=1.0)), "unknown_schema_version"),
    ("NaN rating", raw(event()).replace(b'"rating": 4', b'"rating": NaN'), "malformed_json"),
    (
        "Infinity rating",
        raw(event()).replace(b'"rating": 4', b'"rating": Infinity'),
        "malformed_json",
    ),
    ("1e999 rating", raw(event()).replace(b'"rating": 4', b'"rating": 1e999'), "malformed_json"),
    (
        "nested 40 deep inside the limit of the parser",
        raw(event(extra=json.loads("[" * 40 + "]" * 40))),
        "malformed_json",
    ),
    ("decades in the future", raw(event(created_at="2066-01-01T00:00:00Z")), "bad_timestamp"),
    (
        "minutes in the future beyond the skew",
        raw(event(created_at="2026-11-27T05:10:00Z")),
        "bad_timestamp",
    ),
]


def validate() -> Validate:
    return Validate(BatchConfig(), Metrics(), clock=lambda: NOW)


@pytest.mark.parametrize(("name", "value", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_dead_lettered_with_its_reason(name: str, value: bytes, reason: str):
    message = Incoming("review.created", 3, 41, b"p-1", value, (("trace", b"\xff"),))
    batch = validate()([message])
    assert batch.valid == []
    [(record, key)] = batch.dead
    assert (record.reason, record.partition, record.offset, key) == (reason, 3, 41, b"p-1")
    assert record.detail
    encoded = to_json_bytes(record)  # a lone surrogate in the input must not break this
    payload = json.loads(encoded)
    assert list(schemas.validator("dead_letter", 1).iter_errors(payload)) == []
    assert dict(dead_letter_headers(record))["reviewpulse-dlq-reason"] == reason.encode()


def test_the_surrogate_review_id_is_kept_escaped_in_the_record() -> None:
    [(record, _)] = validate()([Incoming("t", 0, 0, None, raw(event(review_id="ab\ud800")))]).dead
    assert record.review_id == "ab\\ud800"


def test_a_batch_of_hostile_input_and_good_reviews_keeps_the_good_ones() -> None:
    values = [value for _, value, _ in HOSTILE] + [
        raw(event(review_id=f"ok-{i}")) for i in range(3)
    ]
    messages = [Incoming("review.created", 0, i, None, v) for i, v in enumerate(values)]
    batch = validate()(messages)
    assert [r.event.review_id for r in batch.valid] == ["ok-0", "ok-1", "ok-2"]
    assert [r.source for r in batch.valid] == [
        ("review.created", 0, len(HOSTILE) + i) for i in range(3)
    ]
    assert len(batch.dead) == len(HOSTILE)


def test_future_reviews_are_rejected_by_the_configured_skew_only() -> None:
    soon = raw(event(created_at="2026-11-27T05:04:00Z"))  # 3.5 min ahead, within 300 s
    later = raw(event(created_at="2026-11-27T05:06:00Z"))
    assert validate()([Incoming("t", 0, 0, None, soon)]).valid
    [(record, _)] = validate()([Incoming("t", 0, 1, None, later)]).dead
    assert record.reason == "bad_timestamp" and "clock skew" in record.detail


def test_parse_review_itself_never_raises_on_the_issue_cases() -> None:
    for _, value, reason in HOSTILE[:13]:
        result = parse_review(value, max_text_chars=5000, max_event_bytes=262144)
        assert isinstance(result, InvalidEvent) and result.reason_code == reason


def test_headers_that_would_push_the_record_past_1_mb_are_cut_and_the_cut_is_recorded() -> None:
    headers = [(f"h{i}", b"x" * 60_000) for i in range(30)]  # 1.8 MB of headers
    message = Incoming("review.created", 1, 7, b"k" * 100_000, b"{" * 200_000, tuple(headers))
    [(record, key)] = validate()([message]).dead
    encoded = to_json_bytes(record)
    assert len(encoded) <= MAX_RECORD_BYTES
    assert record.reason == "event_too_large" or record.reason == "malformed_json"
    assert record.headers_truncated
    assert 0 < len(record.headers) < 30
    assert [h.key for h in record.headers] == [f"h{i}" for i in range(len(record.headers))]
    assert f"{30 - len(record.headers)} of 30 headers dropped" in record.detail
    assert "key bytes are kept" in record.detail
    assert len(key) <= 16 * 1024  # the dead letter's Kafka key is cut as well
    assert list(schemas.validator("dead_letter", 1).iter_errors(json.loads(encoded))) == []


def test_a_small_record_keeps_every_header_and_says_nothing_was_cut() -> None:
    record = build_dead_letter(
        InvalidEvent("malformed_json", "x"),
        topic="t",
        partition=0,
        offset=0,
        key=None,
        value=b"{",
        headers=[("a", b"1"), ("b", None)],
        failed_at=NOW,
    )
    assert not record.headers_truncated and [h.key for h in record.headers] == ["a", "b"]
