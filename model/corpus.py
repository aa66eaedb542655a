"""The shipped review corpus and the one reader of review files.

Training (labelled reviews) and the stream's replay (events to send) both read
``online_shopping_10_cats`` (columns ``cat,label,review``) and users' own CSV/JSONL files
through :func:`read_records`; each maps the raw rows to its own records. Standard library only.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from model.paths import REPO_ROOT

SHIPPED_CORPUS = REPO_ROOT / "data" / "reviews" / "online_shopping_10_cats.zip"

_JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


def _records_from_csv(handle: io.TextIOBase) -> Iterator[dict[str, Any]]:
    yield from csv.DictReader(handle)


def _records_from_jsonl(handle: io.TextIOBase) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(handle, 1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"line {number}: {error}") from None


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Raw rows of a CSV (header row), a JSONL file, or a zip of them (members in name
    order), as dicts. A UTF-8 byte-order mark at the start of a file is dropped."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                if name.lower().endswith((".csv", ".jsonl", ".json")):
                    raw = archive.read(name).decode("utf-8-sig")
                    handle = io.StringIO(raw, newline="")
                    reader = _records_from_csv if name.endswith(".csv") else _records_from_jsonl
                    yield from reader(handle)
        return
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if suffix == ".csv":
            yield from _records_from_csv(handle)
        elif suffix in _JSONL_SUFFIXES:
            yield from _records_from_jsonl(handle)
        else:
            raise ValueError(f"unsupported file type {suffix!r}: use .csv, .jsonl or .zip")
