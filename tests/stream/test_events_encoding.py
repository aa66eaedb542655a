"""``to_json_bytes`` writes the JSON value of ``json.dumps(asdict(event))``, compact, with
non-ASCII kept and the fields in declaration order, for every event the worker encodes."""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta, timezone

import pytest

import schemas
from stream.events import (
    DeadLetter,
    DeadLetterHeader,
    Probabilities,
    ReviewCreated,
    ReviewSentiment,
    format_timestamp,
    to_json_bytes,
)

NOW = datetime(2026, 11, 27, 5, 0, 30, tzinfo=UTC)


def reference(event: object) -> bytes:
    return json.dumps(asdict(event), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


STRING_OR_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*')


def spelled_alike(encoded: bytes, expected: bytes) -> bool:
    """The same bytes once each number is written the one way ``json.dumps`` writes it:
    strings, separators and escapes byte for byte."""

    def respell(token: re.Match[str]) -> str:
        text = token[0]
        return text if text.startswith('"') else json.dumps(json.loads(text))

    def respelled(data: bytes) -> str:
        return STRING_OR_NUMBER.sub(respell, data.decode())

    return respelled(encoded) == respelled(expected)


EVENTS = [
    ReviewCreated(
        1, "r-1", "p-1", "手机", "u", '屏幕"很"清晰\\ \n\u2028😀', "2026-11-27T05:00:00Z"
    ),
    ReviewCreated(1, "r-2", "p-1", "手机", "u", "好", "2026-11-27T05:00:00Z", rating=5),
    ReviewSentiment(
        schema_version=1,
        review_id="r-1",
        product_id="p-1",
        category="食品",
        user_id="u",
        rating=None,
        sentiment="negative",
        confidence=0.912345,
        probabilities=Probabilities(negative=0.912345, neutral=1e-06, positive=0.087654),
        keywords=["质量", "包装"],
        complaint_keywords=[],
        model_version="v1",
        created_at="2026-11-27T05:00:00Z",
        processed_at="2026-11-27T05:00:30Z",
    ),
    DeadLetter(
        schema_version=1,
        reason="malformed_json",
        detail="value is not JSON: Expecting value",
        topic="review.created",
        partition=3,
        offset=17,
        key_b64=None,
        value_b64="/w==",
        value_truncated=False,
        headers=[DeadLetterHeader("trace", "eA=="), DeadLetterHeader("empty", None)],
        review_id=None,
        failed_at="2026-11-27T05:00:30Z",
        headers_truncated=True,
    ),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_the_value_is_that_of_json_dumps_asdict(event: object) -> None:
    encoded = to_json_bytes(event)  # type: ignore[arg-type]
    assert json.loads(encoded) == asdict(event)  # type: ignore[call-overload]
    assert list(json.loads(encoded)) == [field.name for field in fields(event)]  # type: ignore[arg-type]
    # compact, non-ASCII as is, the same escapes: only a number's spelling may differ
    assert spelled_alike(encoded, reference(event))


def test_small_probabilities_parse_back_to_the_same_number() -> None:
    for value in (1e-06, 5e-05, 2.5e-07, 0.1 + 0.2, 0.0, 1.0):
        event = EVENTS[2]
        probabilities = Probabilities(negative=value, neutral=value, positive=value)
        encoded = to_json_bytes(
            ReviewSentiment(**{**asdict(event), "probabilities": probabilities})  # type: ignore[arg-type]
        )
        assert json.loads(encoded)["probabilities"] == {
            "negative": value,
            "neutral": value,
            "positive": value,
        }


def test_encoded_events_satisfy_their_schemas() -> None:
    names = {ReviewCreated: "review_created", ReviewSentiment: "review_sentiment"}
    names[DeadLetter] = "dead_letter"
    for event in EVENTS:
        payload = json.loads(to_json_bytes(event))
        assert schemas.validator(names[type(event)], 1).is_valid(payload)


def test_objects_that_are_not_dataclasses_are_refused() -> None:
    @dataclass(frozen=True)
    class Holder:
        value: object

    with pytest.raises(TypeError, match="not JSON serializable"):
        to_json_bytes(Holder(NOW))  # type: ignore[arg-type]


def test_timestamps_are_utc_whole_seconds_with_z_at_any_offset() -> None:
    rng = random.Random(7)
    for _ in range(2_000):
        moment = datetime(1970, 1, 2, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(4_200_000_000), microseconds=rng.randrange(1_000_000)
        )
        local = moment.astimezone(timezone(timedelta(minutes=rng.randrange(-900, 900))))
        expected = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert format_timestamp(local) == expected
        assert format_timestamp(moment) == expected  # the same instant, remembered or not
