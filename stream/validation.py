"""Edge validation: raw Kafka bytes in, a ``ValidReview`` or an ``InvalidEvent`` out. Pure.

JSON Schema (``schemas/review_created.v<N>.json``) checks structure and types; the checks it
cannot express (timestamp parsing, a timestamp too far in the future, text emptiness and
length after cleaning) follow here. The schema is checked by a predicate compiled from the
schema file (``stream.schema_check``, about 2 µs instead of ``jsonschema``'s 36); only an
event it rejects goes through ``jsonschema``, which names the reason, so dead-letter reasons
and details are ``jsonschema``'s, and the verdict is too (a test holds the two to the same
answer on the examples and on fuzzed corpora).
Every rejection carries a reason code from ``stream.events.ReasonCode`` and a readable detail.

No input makes ``parse_review`` raise: nesting too deep for the parser, integer literals
beyond Python's 4,300-digit limit, non-finite numbers, timestamps that overflow on
conversion to UTC and lone surrogates (not Unicode, so they could never be encoded again)
are all rejections with a reason (``tests/stream/test_validation_fuzz.py`` holds it to that).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from jsonschema import ValidationError

import schemas
from model.text import clean_text
from stream.events import ReasonCode, ReviewCreated, format_timestamp, review_created_from_dict
from stream.schema_check import Check, UnsupportedSchema, compile_schema

EVENT_NAME = "review_created"

# When several schema errors apply, report the most basic one.
_ERROR_PRIORITY: dict[str, tuple[int, ReasonCode]] = {
    "required": (0, "missing_field"),
    "type": (1, "wrong_type"),
    "minLength": (2, "empty_field"),
    "maxLength": (3, "field_too_long"),
    "minimum": (4, "rating_out_of_range"),
    "maximum": (4, "rating_out_of_range"),
    # Only created_at has a format (date-time). jsonschema checks it only where the optional
    # rfc3339-validator is installed; either way the reason is the one _parse_timestamp gives.
    "format": (5, "bad_timestamp"),
}
_EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
_LATEST = datetime(2105, 12, 31, tzinfo=UTC)
MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted: a review is flat; deeper values are an
attack on the parser (or on whatever recurses over them later), not data."""
_KEPT_STRINGS = ("review_id", "product_id", "category", "user_id", "text", "created_at")
_SHOWN_CHARS = 80


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
    source: tuple[str, int, int] | None = None  # (topic, partition, offset) it was read at


def parse_review(
    raw: bytes | None,
    *,
    max_text_chars: int,
    max_event_bytes: int,
    now: datetime | None = None,
    max_future_skew_s: float | None = None,
    compiled: bool = True,
    clean: Callable[[str], str] = clean_text,
) -> ValidReview | InvalidEvent:
    """Decode and validate one ``review.created`` message value.

    With ``now`` and ``max_future_skew_s``, a review dated more than that many seconds after
    ``now`` is rejected (``bad_timestamp``): event-time windows would count it in "the last
    hour" until its time came, and it would hold the alert watermark in the future.
    ``compiled=False`` checks the schema with ``jsonschema`` alone (the reference the
    compiled check is tested and benchmarked against); the result is the same. ``clean`` is
    ``model.text.clean_text``, or a wrapper of it (the worker times it as its own stage)."""
    if not raw:
        return InvalidEvent("malformed_json", "empty message value")
    if len(raw) > max_event_bytes:
        return InvalidEvent(
            "event_too_large", f"message is {len(raw)} bytes, limit is {max_event_bytes}"
        )
    try:
        payload = _loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return InvalidEvent("malformed_json", f"value is not UTF-8: {exc}")
    except json.JSONDecodeError as exc:
        return InvalidEvent("malformed_json", f"value is not JSON: {exc}")
    except RecursionError:
        return InvalidEvent("malformed_json", "value is nested too deeply to parse")
    except ValueError as exc:  # integers over 4,300 digits, NaN, Infinity, 1e999
        return InvalidEvent("malformed_json", f"value is not acceptable JSON: {str(exc)[:200]}")
    if not isinstance(payload, dict):
        return InvalidEvent("not_an_object", f"JSON value is a {type(payload).__name__}")
    # Nesting cannot exceed the number of brackets; counting them (C speed) spares the walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth_over(payload, MAX_DEPTH):
        return InvalidEvent(
            "malformed_json", f"value nests arrays/objects deeper than {MAX_DEPTH} levels"
        )
    review_id = _peek_review_id(payload)

    version = payload.get("schema_version")
    if "schema_version" not in payload:
        return InvalidEvent("missing_field", "'schema_version' is a required property", review_id)
    known = schemas.known_versions(EVENT_NAME)
    if type(version) is not int or version not in known:  # 1.0 == 1 == True in Python
        kind = "" if type(version) is int else f" (a {type(version).__name__})"
        return InvalidEvent(
            "unknown_schema_version",
            f"schema_version {_short(version)}{kind} is not one of {list(known)}",
            review_id,
        )

    fast = compiled_check(version) if compiled else None
    if fast is None or not fast(payload):
        errors = list(schemas.validator(EVENT_NAME, version).iter_errors(payload))
        if errors:
            reason, error = _most_basic(errors)
            return InvalidEvent(reason, _describe(error), review_id)
    for field in _KEPT_STRINGS:
        if not _is_unicode(payload[field]):
            return InvalidEvent(
                "invalid_unicode",
                f"{field} holds a lone surrogate (an escape such as \\ud800 that is not a "
                "character), so it cannot be stored or re-encoded",
                review_id,
            )
    if isinstance(payload.get("rating"), float):  # 4.0 passes "integer" in JSON Schema
        payload = {**payload, "rating": int(payload["rating"])}

    created_at = _parse_timestamp(payload["created_at"])
    if created_at is None:
        return InvalidEvent(
            "bad_timestamp",
            f"created_at {_short(payload['created_at'])} is not RFC 3339 with an offset "
            "between 1970 and 2105",
            review_id,
        )
    if now is not None and max_future_skew_s is not None:
        ahead = (created_at - now).total_seconds()
        if ahead > max_future_skew_s:
            return InvalidEvent(
                "bad_timestamp",
                f"created_at {_short(payload['created_at'])} is {ahead:.0f} s after the worker's "
                f"clock ({format_timestamp(now)}); at most {max_future_skew_s:g} s of clock "
                "skew is accepted",
                review_id,
            )

    text = clean(payload["text"])
    if not text:
        return InvalidEvent("empty_text", "text is empty after cleaning", review_id)
    if len(text) > max_text_chars:
        return InvalidEvent(
            "text_too_long",
            f"text is {len(text)} characters after cleaning, limit is {max_text_chars}",
            review_id,
        )
    return ValidReview(review_created_from_dict(payload), text, created_at)


@cache
def compiled_check(version: int) -> Check | None:
    """The compiled schema check of ``review.created`` v``version`` (built once), or None
    when the schema uses more than ``stream.schema_check`` implements."""
    try:
        return compile_schema(
            schemas.load_schema(EVENT_NAME, version),
            schemas.validator(EVENT_NAME, version).format_checker,
        )
    except UnsupportedSchema:
        return None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _loads(text: str) -> Any:
    """``json.loads`` without Python's extensions: NaN, Infinity and overflowing floats are
    errors, not values (they would fail later, where failing is a crash)."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def _depth_over(value: Any, limit: int) -> bool:
    """True if arrays/objects in ``value`` nest deeper than ``limit`` (iterative: no
    recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(value: Any) -> str:
    """``repr(value)`` cut to a readable length, for details that quote the input."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = f"<{type(value).__name__} too large to print>"
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def _peek_review_id(payload: dict[str, Any]) -> str | None:
    """The review_id for the dead letter, if it is a usable string (surrogates escaped)."""
    value = payload.get("review_id")
    if not isinstance(value, str) or not value:
        return None
    return value[:128].encode("utf-8", "backslashreplace").decode("utf-8")


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
        if moment.tzinfo is None or moment.utcoffset() is None:
            return None
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return None
    return moment if _EARLIEST <= moment <= _LATEST else None
