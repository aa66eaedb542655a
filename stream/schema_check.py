"""A JSON Schema compiled into one plain Python predicate, for the hot path. Pure.

``jsonschema`` walks the schema for every instance (about 36 µs a review); the event
schemas use a small, flat subset of the language, so :func:`compile_schema` turns that
subset into closures once, and a check costs a few dict lookups (about 2 µs). The schema
file stays the contract: the predicate answers "valid?" only, with draft 2020-12's
semantics (``tests/stream/test_fast_validation.py`` holds it to ``jsonschema``'s verdict on
the examples and on fuzzed corpora); a caller that needs the reason asks ``jsonschema``.
A schema with any keyword outside the subset does not compile
(:class:`UnsupportedSchema`), so a richer schema falls back to ``jsonschema``, never to a
check that ignores part of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

Check = Callable[[Any], bool]

# Keywords that only describe; they never reject.
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "examples"})
_SUPPORTED = _ANNOTATIONS | {
    "type",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "format",
}


class UnsupportedSchema(ValueError):
    """The schema uses a keyword (or a form of one) this compiler does not implement."""


class FormatChecker(Protocol):
    """``jsonschema.FormatChecker``: the very checker the reference validator uses."""

    def conforms(self, instance: object, format: str) -> bool: ...


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    # JSON Schema: 4.0 is an integer; True is not.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPES: dict[str, Check] = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
}


def _enum_equal(member: Any, value: Any) -> bool:
    """``jsonschema``'s equality for scalars: booleans equal only booleans, 1 == 1.0."""
    if isinstance(member, bool) or isinstance(value, bool):
        return isinstance(member, bool) and isinstance(value, bool) and member is value
    if isinstance(value, list | dict):
        return False
    return member == value


def compile_schema(schema: Mapping[str, Any], formats: FormatChecker) -> Check:
    """A predicate that is true exactly when ``schema`` accepts the instance."""
    checks = _compile(schema, formats)

    def check(value: Any) -> bool:
        return all(one(value) for one in checks)

    if len(checks) == 1:
        return checks[0]
    return check


def _compile(schema: Mapping[str, Any], formats: FormatChecker) -> list[Check]:
    if not isinstance(schema, Mapping):
        raise UnsupportedSchema(f"only object schemas are supported, not {schema!r}")
    unknown = sorted(set(schema) - _SUPPORTED)
    if unknown:
        raise UnsupportedSchema(f"keywords {unknown} are not supported")
    checks: list[Check] = []
    if "type" in schema:
        checks.append(_type_check(schema["type"]))
    if "enum" in schema:
        checks.append(_enum_check(schema["enum"]))
    if "minLength" in schema or "maxLength" in schema:
        checks.append(_length_check(schema.get("minLength", 0), schema.get("maxLength")))
    if "minimum" in schema or "maximum" in schema:
        checks.append(_range_check(schema.get("minimum"), schema.get("maximum")))
    if "format" in schema:
        name = schema["format"]
        checks.append(lambda value: formats.conforms(value, name))
    if "additionalProperties" in schema and schema["additionalProperties"] is not True:
        raise UnsupportedSchema("additionalProperties other than true is not supported")
    if "required" in schema or "properties" in schema:
        checks.append(
            _object_check(schema.get("required", ()), schema.get("properties", {}), formats)
        )
    return checks


def _type_check(declared: str | list[str]) -> Check:
    names = [declared] if isinstance(declared, str) else list(declared)
    if not names or any(name not in _TYPES for name in names):
        raise UnsupportedSchema(f"type {declared!r} is not supported")
    tests = [_TYPES[name] for name in names]
    if len(tests) == 1:
        return tests[0]
    return lambda value: any(test(value) for test in tests)


def _enum_check(members: list[Any]) -> Check:
    if not isinstance(members, list) or any(isinstance(m, list | dict) for m in members):
        raise UnsupportedSchema("enum must list scalars")
    return lambda value: any(_enum_equal(member, value) for member in members)


def _length_check(low: int, high: int | None) -> Check:
    def check(value: Any) -> bool:
        if not isinstance(value, str):
            return True  # length keywords apply to strings only
        size = len(value)
        return size >= low and (high is None or size <= high)

    return check


def _range_check(low: float | None, high: float | None) -> Check:
    for bound in (low, high):
        if bound is not None and (not _is_number(bound) or not math.isfinite(bound)):
            raise UnsupportedSchema(f"bound {bound!r} is not a finite number")

    def check(value: Any) -> bool:
        if not _is_number(value):
            return True  # range keywords apply to numbers only
        return (low is None or value >= low) and (high is None or value <= high)

    return check


def _object_check(
    required: list[str], properties: Mapping[str, Any], formats: FormatChecker
) -> Check:
    wanted = tuple(required)
    fields = tuple((name, compile_schema(sub, formats)) for name, sub in properties.items())

    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return True  # object keywords apply to objects only
        for name in wanted:
            if name not in value:
                return False
        for name, field_check in fields:
            if name in value and not field_check(value[name]):
                return False
        return True

    return check
