"""The compiled schema check (``stream.schema_check``) against ``jsonschema``, the reference:
the same verdict on the schema examples, on a targeted corpus of every field with every odd
value, and on the fuzz corpus of ``test_validation_fuzz``; and ``parse_review`` gives the
same result (reason codes and details included) with and without it."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

import schemas
from stream.schema_check import UnsupportedSchema, compile_schema
from stream.validation import EVENT_NAME, InvalidEvent, compiled_check, parse_review
from tests.stream.test_validation_fuzz import NOW, ODD_VALUES, corpus

FIELDS = ("schema_version", "review_id", "product_id", "category", "user_id", "rating")
FIELDS += ("text", "created_at", "extra")
# Values at and around every bound the schema draws, and every JSON type.
EDGE_VALUES: list[object] = [
    *ODD_VALUES,
    1,
    2,
    5,
    6,
    0.5,
    4.0,
    5.0000001,
    0.9999999,
    -(2**70),
    "a",
    "x" * 64,
    "x" * 65,
    "好" * 128,
    "好" * 129,
    [None],
    ["1"],
    {"rating": 3},
]


def reference() -> Draft202012Validator:
    return schemas.validator(EVENT_NAME, 1)


def good() -> dict[str, Any]:
    return dict(schemas.examples(EVENT_NAME, 1)["review_created.v1.json"])


def targeted() -> list[dict[str, Any]]:
    """Every field set to every edge value, or removed; then random pairs of such changes."""
    payloads = []
    for field in FIELDS:
        for value in EDGE_VALUES:
            payloads.append({**good(), field: value})
        payloads.append({k: v for k, v in good().items() if k != field})
    rng = random.Random(12)
    for _ in range(2000):
        payload = good()
        for field in rng.sample(FIELDS, 2):
            if rng.random() < 0.15:
                payload.pop(field, None)
            else:
                payload[field] = rng.choice(EDGE_VALUES)
        payloads.append(payload)
    return payloads


def decoded_fuzz() -> list[Any]:
    """The fuzz corpus's messages that decode as JSON (what the schema check ever sees)."""
    values = []
    for raw in corpus():
        try:
            values.append(json.loads(raw or b""))
        except (ValueError, RecursionError):
            continue
    return values


@pytest.mark.parametrize("event", ["review_created", "review_sentiment", "dead_letter"])
def test_schema_examples_get_the_reference_verdict(event: str) -> None:
    schema = schemas.load_schema(event, 1)
    try:
        check = compile_schema(schema, FormatChecker())
    except UnsupportedSchema:
        pytest.skip(f"{event} uses keywords the compiler leaves to jsonschema")
    validator = schemas.validator(event, 1)
    examples = schemas.examples(event, 1)
    assert examples
    for payload in examples.values():
        assert check(payload) is True
        assert validator.is_valid(payload)
        for key in payload:  # and each example with one field removed
            smaller = {k: v for k, v in payload.items() if k != key}
            assert check(smaller) == validator.is_valid(smaller), (event, key)


def test_review_created_compiles() -> None:
    # The input schema is what the hot path checks: it must stay within the subset.
    assert compiled_check(1) is not None


def test_targeted_corpus_gets_the_reference_verdict() -> None:
    check, validator = compiled_check(1), reference()
    assert check is not None
    payloads = targeted()
    verdicts = [validator.is_valid(payload) for payload in payloads]
    assert [check(payload) for payload in payloads] == verdicts
    assert 100 < sum(verdicts) < len(verdicts) - 100  # both verdicts are well represented


def test_fuzz_corpus_gets_the_reference_verdict() -> None:
    check, validator = compiled_check(1), reference()
    assert check is not None
    values = decoded_fuzz()
    assert len(values) > 1000
    disagreements = [v for v in values if check(v) != validator.is_valid(v)]
    assert disagreements == []


def messages() -> list[bytes | None]:
    encoded = [
        json.dumps(p, ensure_ascii=False).encode("utf-8", "surrogatepass") for p in targeted()
    ]
    return [*corpus(), *encoded]


def test_parse_review_gives_the_same_result_with_and_without_the_compiled_check() -> None:
    reasons = set()
    for raw in messages():
        options: dict[str, Any] = {
            "max_text_chars": 200,
            "max_event_bytes": 65536,
            "now": NOW,
            "max_future_skew_s": 300,
        }
        fast = parse_review(raw, **options)
        slow = parse_review(raw, compiled=False, **options)
        assert fast == slow, raw
        if isinstance(fast, InvalidEvent):
            reasons.add(fast.reason_code)
    schema_reasons = {"missing_field", "wrong_type", "empty_field", "field_too_long"}
    assert schema_reasons | {"rating_out_of_range", "invalid_unicode"} <= reasons


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "additionalProperties": False},
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}}},
        {"oneOf": [{"type": "string"}]},
        {"type": "tuple"},
        {"enum": [[1]]},
        {"type": "integer", "minimum": "1"},
    ],
)
def test_schemas_beyond_the_subset_do_not_compile(schema: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedSchema):
        compile_schema(schema, FormatChecker())


@pytest.mark.parametrize(
    ("schema", "instance", "valid"),
    [
        ({"type": "integer"}, 4.0, True),  # JSON Schema: 4.0 is an integer
        ({"type": "integer"}, True, False),  # and a boolean is not
        ({"type": "number"}, False, False),
        ({"enum": [1]}, 1.0, True),
        ({"enum": [1]}, True, False),
        ({"enum": [True]}, 1, False),
        ({"minimum": 1, "maximum": 5}, "9", True),  # range keywords ignore non-numbers
        ({"minLength": 2}, 1, True),  # length keywords ignore non-strings
        ({"minLength": 2}, "\ud800x", True),  # code points, a lone surrogate counts one
        ({"required": ["a"]}, [], True),  # object keywords ignore non-objects
        ({"type": ["integer", "null"]}, None, True),
    ],
)
def test_keyword_semantics_match_the_reference(schema: dict, instance: object, valid: bool) -> None:
    assert compile_schema(schema, FormatChecker())(instance) is valid
    assert Draft202012Validator(schema, format_checker=FormatChecker()).is_valid(instance) is valid


def test_format_uses_the_reference_format_checker() -> None:
    checker = FormatChecker()
    checker.checks("date-time")(lambda value: not isinstance(value, str) or value.endswith("Z"))
    schema = {"type": "string", "format": "date-time"}
    check = compile_schema(schema, checker)
    assert check("2026-11-27T05:00:00Z") is True
    assert check("2026-11-27T05:00:00+08:00") is False
