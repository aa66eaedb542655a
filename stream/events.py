"""Python mirrors of the JSON Schemas in ``schemas/`` (a test keeps them from drifting).

Field order, names, types, required-ness (no default = required) and enums (``Literal``)
match the schema files. JSON (de)serialisation lives here too, so the wire format has one home.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

import orjson

from model.labels import Sentiment

SCHEMA_VERSION = 1
"""The version this worker writes; the versions it reads are ``schemas.known_versions``."""


ReasonCode = Literal[
    "malformed_json",
    "event_too_large",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "empty_field",
    "field_too_long",
    "unknown_schema_version",
    "bad_timestamp",
    "empty_text",
    "text_too_long",
    "rating_out_of_range",
    "invalid_unicode",
    "poison",
]


@dataclass(frozen=True)
class ReviewCreated:
    """``review.created`` v1: a review from the upstream review service."""

    schema_version: Literal[1]
    review_id: str
    product_id: str
    category: str
    user_id: str
    text: str
    created_at: str
    rating: int | None = None


@dataclass(frozen=True)
class Probabilities:
    negative: float
    neutral: float
    positive: float


@dataclass(frozen=True)
class ReviewSentiment:
    """``review.sentiment`` v1: one classified review."""

    schema_version: Literal[1]
    review_id: str
    product_id: str
    category: str
    user_id: str
    rating: int | None
    sentiment: Sentiment
    confidence: float
    probabilities: Probabilities
    keywords: list[str]
    complaint_keywords: list[str]
    model_version: str
    created_at: str
    processed_at: str


@dataclass(frozen=True)
class DeadLetterHeader:
    key: str
    value_b64: str | None


@dataclass(frozen=True)
class DeadLetter:
    """``review.dead-letter`` v1: an input message that was rejected, raw bytes kept."""

    schema_version: Literal[1]
    reason: ReasonCode
    detail: str
    topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str
    value_truncated: bool
    headers: list[DeadLetterHeader]
    review_id: str | None
    failed_at: str
    headers_truncated: bool = False


@lru_cache(maxsize=4096)
def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix and whole seconds: ``2026-11-27T05:01:12Z``.
    Remembered: every review of a batch has the same ``processed_at``, and ``created_at``
    repeats within a second (a hit costs 0.05 µs, a format 1.0)."""
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def to_json_bytes(event: ReviewCreated | ReviewSentiment | DeadLetter) -> bytes:
    """Compact UTF-8 JSON of an event (non-ASCII kept as is), fields in declaration order.

    orjson writes it from the dataclass itself (0.4 µs an event, where the standard
    library's C encoder took 5.7 µs). The value is that of ``json.dumps(asdict(event))``
    (a test holds the two equal); a float is written in its shortest round-trip form, so it
    parses back to the same number, though a small one may be spelled differently
    (``0.00005`` where ``json.dumps`` writes ``5e-05``). Anything that is not a dataclass,
    a string, a number, a list, a bool or None is refused (``TypeError``)."""
    return orjson.dumps(event, default=_refuse, option=orjson.OPT_PASSTHROUGH_DATETIME)


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def review_created_from_dict(payload: dict[str, Any]) -> ReviewCreated:
    """Build the dataclass from an already schema-validated payload (extra keys dropped)."""
    return ReviewCreated(
        schema_version=payload["schema_version"],
        review_id=payload["review_id"],
        product_id=payload["product_id"],
        category=payload["category"],
        user_id=payload["user_id"],
        text=payload["text"],
        created_at=payload["created_at"],
        rating=payload.get("rating"),
    )
