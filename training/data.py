"""Loading labelled reviews: the shipped corpus, CSV/JSONL files, and ClickHouse.

Every loader returns plain :class:`Review` records with raw (uncleaned) text; cleaning and
deduplication happen in :mod:`training.dedup` so every source goes through the same steps.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NEGATIVE, NEUTRAL, POSITIVE = "negative", "neutral", "positive"
LABELS: tuple[str, ...] = (NEGATIVE, NEUTRAL, POSITIVE)
DEFAULT_CORPUS = (
    Path(__file__).resolve().parent.parent / "data" / "reviews" / "online_shopping_10_cats.zip"
)
UNKNOWN_CATEGORY = "unknown"

_TEXT_KEYS = ("text", "review", "content", "comment")
_CATEGORY_KEYS = ("category", "cat")


@dataclass(frozen=True)
class Review:
    text: str
    label: str  # one of LABELS
    category: str = UNKNOWN_CATEGORY


def label_from_rating(rating: Any) -> str:
    """Star rating 1-5 to a label: >= 4 positive, 3 neutral, <= 2 negative."""
    if isinstance(rating, bool):
        raise ValueError(f"rating must be a number 1-5, got {rating!r}")
    try:
        value = float(rating)
    except (TypeError, ValueError):
        raise ValueError(f"rating must be a number 1-5, got {rating!r}") from None
    if not 1 <= value <= 5 or value != int(value):
        raise ValueError(f"rating must be an integer 1-5, got {rating!r}")
    if value >= 4:
        return POSITIVE
    if value == 3:
        return NEUTRAL
    return NEGATIVE


def label_from_value(value: Any) -> str:
    """A 0/1 label (1 = positive), or a label name, to a label."""
    if isinstance(value, str):
        name = value.strip().lower()
        if name in LABELS:
            return name
        value = name
    if str(value) in ("1", "1.0"):
        return POSITIVE
    if str(value) in ("0", "0.0"):
        return NEGATIVE
    raise ValueError(f"label must be 0, 1 or one of {LABELS}, got {value!r}")


def review_from_record(record: Mapping[str, Any]) -> Review:
    """One review from a dict with a text column and either ``label`` or ``rating``."""
    text = next((record[k] for k in _TEXT_KEYS if record.get(k) is not None), None)
    if not isinstance(text, str):
        raise ValueError(f"record has no text column (one of {_TEXT_KEYS})")
    category = next((record[k] for k in _CATEGORY_KEYS if record.get(k)), UNKNOWN_CATEGORY)
    if record.get("label") not in (None, ""):
        label = label_from_value(record["label"])
    elif record.get("rating") not in (None, ""):
        label = label_from_rating(record["rating"])
    else:
        raise ValueError("record has neither a label nor a rating")
    return Review(text=text, label=label, category=str(category).strip() or UNKNOWN_CATEGORY)


def _records_from_csv(handle: io.TextIOBase) -> Iterator[dict[str, Any]]:
    yield from csv.DictReader(handle)


def _records_from_jsonl(handle: io.TextIOBase) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(handle, 1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"line {number}: {error}") from None


def _read_records(path: Path) -> Iterator[dict[str, Any]]:
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
        elif suffix in (".jsonl", ".json", ".ndjson"):
            yield from _records_from_jsonl(handle)
        else:
            raise ValueError(f"unsupported file type {suffix!r}: use .csv, .jsonl or .zip")


def load_file(path: Path, *, skip_invalid: bool = True) -> tuple[list[Review], int]:
    """Reviews from a CSV, JSONL or zip of them. Returns (reviews, rows skipped as invalid)."""
    reviews: list[Review] = []
    skipped = 0
    for record in _read_records(Path(path)):
        try:
            reviews.append(review_from_record(record))
        except ValueError:
            if not skip_invalid:
                raise
            skipped += 1
    return reviews, skipped


def load_clickhouse(settings: Any, *, limit: int | None = None) -> list[Review]:
    """Rated reviews stored by the stream (``reviews`` FINAL), labelled from their rating."""
    from stream.sink.backend import connect

    ch = connect(settings)
    try:
        sql = (
            f"SELECT text, category, rating FROM {ch.database}.reviews FINAL "
            "WHERE rating IS NOT NULL ORDER BY review_id"
        )
        if limit:
            sql += f" LIMIT {int(limit)}"
        rows = ch.query(sql)
    finally:
        ch.close()
    return [
        Review(text=text, label=label_from_rating(rating), category=category or UNKNOWN_CATEGORY)
        for text, category, rating in rows
    ]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def reviews_sha256(reviews: Iterable[Review]) -> str:
    """Order-independent hash of a set of reviews (text, label, category)."""
    lines = sorted(f"{r.label}\t{r.category}\t{r.text}" for r in reviews)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
