"""The JSON Schemas are valid, their examples pass, and the dataclasses do not drift from them."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, get_args, get_origin

import pytest
from jsonschema import Draft202012Validator

import schemas
from stream import events

MIRRORS = [
    ("review_created", 1, events.ReviewCreated),
    ("review_sentiment", 1, events.ReviewSentiment),
    ("dead_letter", 1, events.DeadLetter),
]
PRIMITIVES = {str: "string", int: "integer", float: "number", bool: "boolean"}


@pytest.mark.parametrize(("event", "version", "_cls"), MIRRORS)
def test_schema_is_valid_draft_2020_12(event: str, version: int, _cls: type) -> None:
    schema = schemas.load_schema(event, version)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize(("event", "version", "_cls"), MIRRORS)
def test_examples_validate(event: str, version: int, _cls: type) -> None:
    found = schemas.examples(event, version)
    assert found, f"no examples for {event} v{version}"
    for name, payload in found.items():
        errors = [e.message for e in schemas.validator(event, version).iter_errors(payload)]
        assert errors == [], name


def test_known_versions_and_unknown_schema() -> None:
    assert schemas.known_versions("review_created") == (1,)
    with pytest.raises(FileNotFoundError):
        schemas.load_schema("review_created", 99)


def _schema_types(prop: dict[str, Any]) -> set[str]:
    kind = prop["type"]
    return {kind} if isinstance(kind, str) else set(kind)


def _check_type(hint: Any, prop: dict[str, Any], where: str) -> None:
    """Compare one dataclass type hint with one schema property, recursively."""
    origin, args = get_origin(hint), get_args(hint)
    expected = _schema_types(prop)
    if origin in (typing.Union, types.UnionType):
        non_null = [a for a in args if a is not type(None)]
        assert "null" in expected, f"{where}: Optional in Python but not nullable in schema"
        assert len(non_null) == 1, where
        _check_type(non_null[0], {**prop, "type": sorted(expected - {"null"})}, where)
        return
    assert "null" not in expected, f"{where}: nullable in schema but not Optional in Python"
    if origin is Literal:
        assert list(args) == prop["enum"], f"{where}: enum drift"
        assert {PRIMITIVES[type(a)] for a in args} == expected, where
    elif origin is list:
        assert expected == {"array"}, where
        _check_type(args[0], prop["items"], where + "[]")
    elif dataclasses.is_dataclass(hint):
        assert expected == {"object"}, where
        _check_dataclass(hint, prop, where)
    else:
        assert expected == {PRIMITIVES[hint]}, f"{where}: {hint} vs {expected}"
        assert "enum" not in prop, f"{where}: schema has an enum, Python has no Literal"


def _check_dataclass(cls: type, schema: dict[str, Any], where: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    assert set(fields) == set(schema["properties"]), f"{where}: field names drift"
    required = {
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    assert required == set(schema.get("required", [])), f"{where}: required-ness drift"
    for name in fields:
        _check_type(hints[name], schema["properties"][name], f"{where}.{name}")


@pytest.mark.parametrize(("event", "version", "cls"), MIRRORS)
def test_dataclass_mirrors_schema(event: str, version: int, cls: type) -> None:
    _check_dataclass(cls, schemas.load_schema(event, version), cls.__name__)


def test_reason_codes_match_dead_letter_enum() -> None:
    reason_enum = schemas.load_schema("dead_letter", 1)["properties"]["reason"]["enum"]
    assert list(get_args(events.ReasonCode)) == reason_enum
