"""Edge validation: every class of bad input gets its own reason code; good input passes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from stream.validation import InvalidEvent, ValidReview, parse_review

LIMITS = {"max_text_chars": 200, "max_event_bytes": 4096}


def good(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "schema_version": 1,
        "review_id": "r-1",
        "product_id": "p-1",
        "category": "手机",
        "user_id": "u-1",
        "rating": 4,
        "text": "  屏幕很清晰，电池也耐用  ",
        "created_at": "2026-11-27T05:01:12Z",
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not DROP}


DROP = object()


def parse(payload: Any) -> ValidReview | InvalidEvent:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_review(raw, **LIMITS)


def reason(payload: Any) -> str:
    result = parse(payload)
    assert isinstance(result, InvalidEvent), result
    assert result.detail
    return result.reason_code


def test_valid_event_is_cleaned_and_typed() -> None:
    result = parse(good())
    assert isinstance(result, ValidReview)
    assert result.clean_text == "屏幕很清晰,电池也耐用"  # NFKC: full-width comma, trimmed
    assert result.event.rating == 4
    assert result.created_at == datetime(2026, 11, 27, 5, 1, 12, tzinfo=UTC)


def test_rating_is_optional_and_nullable_and_offsets_convert_to_utc() -> None:
    no_rating = parse(good(rating=DROP, created_at="2026-11-27T13:00:00+08:00"))
    assert isinstance(no_rating, ValidReview)
    assert no_rating.event.rating is None
    assert no_rating.created_at == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    null_rating = parse(good(rating=None))
    assert isinstance(null_rating, ValidReview) and null_rating.event.rating is None
    float_rating = parse(good(rating=5.0))
    assert isinstance(float_rating, ValidReview) and float_rating.event.rating == 5


def test_extra_fields_are_tolerated() -> None:
    assert isinstance(parse(good(source="app")), ValidReview)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "malformed_json"),
        (b"{not json", "malformed_json"),
        (b'{"schema_version": 1,', "malformed_json"),
        (b"\xff\xfe\x00garbage", "malformed_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (b'"just a string"', "not_an_object"),
        (b"null", "not_an_object"),
        (b"x" * 5000, "event_too_large"),
    ],
)
def test_undecodable_messages(raw: bytes, code: str) -> None:
    assert reason(raw) == code


def test_none_value_is_malformed() -> None:
    result = parse_review(None, **LIMITS)
    assert isinstance(result, InvalidEvent) and result.reason_code == "malformed_json"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"schema_version": DROP}, "missing_field"),
        ({"review_id": DROP}, "missing_field"),
        ({"text": DROP}, "missing_field"),
        ({"created_at": DROP}, "missing_field"),
        ({"schema_version": 2}, "unknown_schema_version"),
        ({"schema_version": "1"}, "unknown_schema_version"),
        ({"schema_version": True}, "unknown_schema_version"),
        ({"review_id": 42}, "wrong_type"),
        ({"text": ["not", "a", "string"]}, "wrong_type"),
        ({"rating": "5"}, "wrong_type"),
        ({"rating": 4.5}, "wrong_type"),
        ({"rating": True}, "wrong_type"),
        ({"product_id": None}, "wrong_type"),
        ({"rating": 0}, "rating_out_of_range"),
        ({"rating": 6}, "rating_out_of_range"),
        ({"rating": -3}, "rating_out_of_range"),
        ({"product_id": ""}, "empty_field"),
        ({"user_id": "u" * 129}, "field_too_long"),
        ({"created_at": "yesterday"}, "bad_timestamp"),
        ({"created_at": "2026-11-27T05:01:12"}, "bad_timestamp"),  # no offset
        ({"created_at": "1900-01-01T00:00:00Z"}, "bad_timestamp"),
        ({"text": ""}, "empty_text"),
        ({"text": " \u200b\t\n "}, "empty_text"),
        ({"text": "<br/> https://example.com/x"}, "empty_text"),
        ({"text": "质量很好" * 51}, "text_too_long"),
    ],
)
def test_bad_fields(changes: dict[str, Any], code: str) -> None:
    assert reason(good(**changes)) == code


def test_text_limit_applies_after_cleaning() -> None:
    padded = "质量很好" * 50 + " " * 50  # 250 raw characters, 200 after cleaning
    assert isinstance(parse(good(text=padded)), ValidReview)


def test_missing_field_wins_over_other_errors_and_review_id_is_kept() -> None:
    result = parse(good(text=DROP, rating=9))
    assert isinstance(result, InvalidEvent)
    assert result.reason_code == "missing_field"
    assert "text" in result.detail
    assert result.review_id == "r-1"


def test_reviews_dated_in_the_future_beyond_the_skew_are_dead_lettered() -> None:
    now = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    raw = json.dumps(good(created_at="2026-11-27T06:00:00Z")).encode()
    result = parse_review(raw, **LIMITS, now=now, max_future_skew_s=300)
    assert isinstance(result, InvalidEvent) and result.reason_code == "bad_timestamp"
    assert result.review_id == "r-1"
    assert "3600 s after the worker's clock (2026-11-27T05:00:00Z)" in result.detail
    assert "300 s" in result.detail
    # Within the skew (a few minutes of clock difference) and in the past: accepted.
    for created_at in ("2026-11-27T05:04:59Z", "2026-11-27T13:04:00+08:00", "2020-01-01T00:00:00Z"):
        raw = json.dumps(good(created_at=created_at)).encode()
        assert isinstance(parse_review(raw, **LIMITS, now=now, max_future_skew_s=300), ValidReview)
    # Without a clock (replay tooling, tests of other fields) no check is made.
    assert isinstance(parse(good(created_at="2099-01-01T00:00:00Z")), ValidReview)


def test_a_date_time_format_error_is_a_bad_timestamp_whatever_is_installed() -> None:
    """jsonschema checks ``format: date-time`` only when rfc3339-validator is importable, so
    the reason must not depend on it: a format error reads as ``bad_timestamp``, the reason
    the worker's own timestamp check gives without it."""
    from jsonschema import Draft202012Validator, FormatChecker

    import schemas
    from stream.validation import _most_basic

    checker = FormatChecker(formats=())
    checker.checks("date-time")(lambda value: False)
    strict = Draft202012Validator(schemas.load_schema("review_created", 1), format_checker=checker)
    payload = {
        "schema_version": 1,
        "review_id": "r1",
        "product_id": "p1",
        "user_id": "u1",
        "category": "书籍",
        "text": "很好",
        "rating": 5,
        "created_at": "27/11/2026 05:00",
    }
    errors = list(strict.iter_errors(payload))
    assert [e.validator for e in errors] == ["format"]
    assert _most_basic(errors)[0] == "bad_timestamp"
