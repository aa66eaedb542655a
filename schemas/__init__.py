"""Versioned JSON Schemas (draft 2020-12) of every event ReviewPulse reads or writes.

Files are named ``<event>.v<N>.json``; examples of valid payloads live in ``examples/``
under the same name. Load them through this module so callers never build paths.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

SCHEMA_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = SCHEMA_DIR / "examples"


def schema_path(event: str, version: int) -> Path:
    """Path of ``<event>.v<version>.json``; raises ``FileNotFoundError`` if unknown."""
    path = SCHEMA_DIR / f"{event}.v{version}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no schema {event} v{version} in {SCHEMA_DIR}")
    return path


@cache
def load_schema(event: str, version: int) -> dict[str, Any]:
    """The parsed schema document (cached; treat as read-only)."""
    return json.loads(schema_path(event, version).read_text(encoding="utf-8"))


@cache
def known_versions(event: str) -> tuple[int, ...]:
    """Versions of ``event`` that have a schema file, ascending (read once per process)."""
    versions = []
    for path in SCHEMA_DIR.glob(f"{event}.v*.json"):
        suffix = path.name[len(event) + 2 : -len(".json")]
        if suffix.isdigit():
            versions.append(int(suffix))
    return tuple(sorted(versions))


@cache
def validator(event: str, version: int) -> Draft202012Validator:
    """A checked, reusable validator (with format checking) for one schema version."""
    schema = load_schema(event, version)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def examples(event: str, version: int) -> dict[str, dict[str, Any]]:
    """Example payloads ``examples/<event>.v<version>[.<variant>].json`` by file name."""
    found = {}
    for path in sorted(EXAMPLES_DIR.glob(f"{event}.v{version}*.json")):
        found[path.name] = json.loads(path.read_text(encoding="utf-8"))
    return found
