"""Dead-letter records keep the raw bytes; the DLQ limit is a sliding-window state machine."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import schemas
from stream.dlq import DlqLimit, build_dead_letter, dead_letter_headers, original_value
from stream.events import to_json_bytes
from stream.validation import InvalidEvent, parse_review


def test_dead_letter_record_keeps_raw_bytes_and_validates() -> None:
    raw = b'{"schema_version": 1, "rating": 7, \xff'
    invalid = parse_review(raw, max_text_chars=10, max_event_bytes=4096)
    assert isinstance(invalid, InvalidEvent)
    record = build_dead_letter(
        invalid,
        topic="review.created",
        partition=3,
        offset=1187,
        key=b"p-1",
        value=raw,
        headers=[("source", b"replay"), ("empty", None)],
        failed_at=datetime(2026, 11, 27, 5, 0, tzinfo=UTC),
    )
    payload = json.loads(to_json_bytes(record))
    assert [e.message for e in schemas.validator("dead_letter", 1).iter_errors(payload)] == []
    assert original_value(record) == raw
    assert payload["reason"] == "malformed_json"
    assert payload["headers"][1] == {"key": "empty", "value_b64": None}
    assert dict(dead_letter_headers(record)) == {
        "reviewpulse-dlq-reason": b"malformed_json",
        "reviewpulse-dlq-topic": b"review.created",
        "reviewpulse-dlq-partition": b"3",
        "reviewpulse-dlq-offset": b"1187",
    }


def test_dead_letter_without_key_or_value() -> None:
    record = build_dead_letter(
        InvalidEvent("malformed_json", "empty message value"),
        topic="t",
        partition=0,
        offset=0,
        key=None,
        value=None,
        headers=[],
        failed_at=datetime.now(UTC),
    )
    assert record.key_b64 is None and original_value(record) == b""


def test_limit_needs_a_full_window() -> None:
    limit = DlqLimit(ratio=0.5, window=4)
    assert not limit.record_batch([True, True, True])  # 3 of 3 bad, window not full
    assert limit.record(True)


def test_limit_slides_and_stays_tripped() -> None:
    limit = DlqLimit(ratio=0.75, window=4)
    assert not limit.record_batch([True, True, False, False])  # 2/4
    assert not limit.record(True)  # window T F F T -> 2/4
    assert not limit.record(True)  # F F T T -> 2/4
    assert not limit.record(False)  # F T T F
    assert limit.record_batch([True, True])  # T F T T -> 3/4 trips
    assert limit.record(False)  # stays tripped
    assert limit.tripped


def test_limit_below_ratio_never_trips() -> None:
    limit = DlqLimit(ratio=0.9, window=100)
    outcomes = [i % 20 == 0 for i in range(10_000)]  # 5% bad, like real dirty data
    assert not limit.record_batch(outcomes)
    assert limit.dead_share == pytest.approx(0.05)


def test_limit_threshold_is_exact_for_float_ratios() -> None:
    limit = DlqLimit(ratio=0.9, window=10)
    assert limit.threshold == 9
    assert not limit.record_batch([False, False] + [True] * 8)  # 8 of 10
    assert limit.record(True)  # F T T T T T T T T T: 9 of the last 10


@pytest.mark.parametrize(("ratio", "window"), [(0, 10), (1.5, 10), (0.5, 0)])
def test_limit_rejects_bad_configuration(ratio: float, window: int) -> None:
    with pytest.raises(ValueError):
        DlqLimit(ratio=ratio, window=window)


def test_huge_values_are_truncated_so_the_record_fits_a_kafka_message() -> None:
    raw = b"x" * 2_000_000
    record = build_dead_letter(
        InvalidEvent("event_too_large", "message is 2000000 bytes"),
        topic="t",
        partition=0,
        offset=5,
        key=None,
        value=raw,
        headers=[],
        failed_at=datetime.now(UTC),
    )
    assert record.value_truncated
    assert original_value(record) == raw[: 512 * 1024]
    assert "only the first 524288 of 2000000 bytes" in record.detail
    assert len(to_json_bytes(record)) < 1_000_000
