"""Edge validation: raw Kafka bytes in, a ``ValidReview`` or an ``InvalidEvent`` out. Pure.

JSON Schema (``schemas/review_created.v<N>.json``) checks structure and types; the checks it
cannot express (timestamp parsing, a timestamp too far in the future, text emptiness and
length after cleaning) follow here.
Every rejection carries a reason code from ``stream.events.ReasonCode`` and a readable detail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jsonschema import ValidationError

import schemas
from model.text import clean_text
from stream.events import ReasonCode, ReviewCreated, format_timestamp, review_created_from_dict

EVENT_NAME = "review_created"

# When several schema errors apply, report the most basic one.
_ERROR_PRIORITY: dict[str, tuple[int, ReasonCode]] = {
    "required": (0, "missing_field"),
    "type": (1, "wrong_type"),
    "minLength": (2, "empty_field"),
    "maxLength": (3, "field_too_long"),
    "minimum": (4, "rating_out_of_range"),
    "maximum": (4, "rating_out_of_range"),
}
_EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
_LATEST = datetime(2105, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class InvalidEvent:
    """Why an input message was rejected; goes to the dead-letter topic."""

    reason_code: ReasonCode
    detail: str
    review_id: str | None = None


@dataclass(frozen=True)
class ValidReview:
    """An accepted review: the event as sent plus what the pipeline derives from it."""

    event: ReviewCreated
    clean_text: str
    created_at: datetime  # timezone-aware, UTC


def parse_review(
    raw: bytes | None,
    *,
    max_text_chars: int,
    max_event_bytes: int,
    now: datetime | None = None,
    max_future_skew_s: float | None = None,
) -> ValidReview | InvalidEvent:
    """Decode and validate one ``review.created`` message value.

    With ``now`` and ``max_future_skew_s``, a review dated more than that many seconds after
    ``now`` is rejected (``bad_timestamp``): event-time windows would count it in "the last
    hour" until its time came, and it would hold the alert watermark in the future."""
    if not raw:
        return InvalidEvent("malformed_json", "empty message value")
    if len(raw) > max_event_bytes:
        return InvalidEvent(
            "event_too_large", f"message is {len(raw)} bytes, limit is {max_event_bytes}"
        )
    try:
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return InvalidEvent("malformed_json", f"value is not UTF-8: {exc}")
    except json.JSONDecodeError as exc:
        return InvalidEvent("malformed_json", f"value is not JSON: {exc}")
    if not isinstance(payload, dict):
        return InvalidEvent("not_an_object", f"JSON value is a {type(payload).__name__}")
    review_id = _peek_review_id(payload)

    version = payload.get("schema_version")
    if "schema_version" not in payload:
        return InvalidEvent("missing_field", "'schema_version' is a required property", review_id)
    known = schemas.known_versions(EVENT_NAME)
    if isinstance(version, bool) or version not in known:
        return InvalidEvent(
            "unknown_schema_version",
            f"schema_version {version!r} is not one of {list(known)}",
            review_id,
        )

    errors = list(schemas.validator(EVENT_NAME, version).iter_errors(payload))
    if errors:
        reason, error = _most_basic(errors)
        return InvalidEvent(reason, _describe(error), review_id)
    if isinstance(payload.get("rating"), float):  # 4.0 passes "integer" in JSON Schema
        payload = {**payload, "rating": int(payload["rating"])}

    created_at = _parse_timestamp(payload["created_at"])
    if created_at is None:
        return InvalidEvent(
            "bad_timestamp",
            f"created_at {payload['created_at']!r} is not RFC 3339 with an offset "
            "between 1970 and 2105",
            review_id,
        )
    if now is not None and max_future_skew_s is not None:
        ahead = (created_at - now).total_seconds()
        if ahead > max_future_skew_s:
            return InvalidEvent(
                "bad_timestamp",
                f"created_at {payload['created_at']!r} is {ahead:.0f} s after the worker's "
                f"clock ({format_timestamp(now)}); at most {max_future_skew_s:g} s of clock "
                "skew is accepted",
                review_id,
            )

    text = clean_text(payload["text"])
    if not text:
        return InvalidEvent("empty_text", "text is empty after cleaning", review_id)
    if len(text) > max_text_chars:
        return InvalidEvent(
            "text_too_long",
            f"text is {len(text)} characters after cleaning, limit is {max_text_chars}",
            review_id,
        )
    return ValidReview(review_created_from_dict(payload), text, created_at)


def _peek_review_id(payload: dict[str, Any]) -> str | None:
    value = payload.get("review_id")
    return value[:128] if isinstance(value, str) and value else None


def _most_basic(errors: list[ValidationError]) -> tuple[ReasonCode, ValidationError]:
    def rank(error: ValidationError) -> int:
        return _ERROR_PRIORITY.get(str(error.validator), (9, "wrong_type"))[0]

    error = min(errors, key=rank)
    return _ERROR_PRIORITY.get(str(error.validator), (9, "wrong_type"))[1], error


def _describe(error: ValidationError) -> str:
    where = ".".join(str(part) for part in error.absolute_path)
    message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    return f"{where}: {message}" if where else message


def _parse_timestamp(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        return None
    moment = moment.astimezone(UTC)
    return moment if _EARLIEST <= moment <= _LATEST else None
