"""Loading labelled reviews: the shipped corpus, CSV/JSONL files, and ClickHouse.

Every loader returns plain :class:`Review` records with raw (uncleaned) text; cleaning and
deduplication happen in :mod:`training.dedup` so every source goes through the same steps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.corpus import read_records
from model.labels import NEGATIVE, POSITIVE, SENTIMENTS, label_from_rating

if TYPE_CHECKING:
    from stream.config import ClickHouseConfig

UNKNOWN_CATEGORY = "unknown"

_TEXT_KEYS = ("text", "review", "content", "comment")
_CATEGORY_KEYS = ("category", "cat")


@dataclass(frozen=True)
class Review:
    text: str
    label: str  # one of model.labels.SENTIMENTS
    category: str = UNKNOWN_CATEGORY


def label_from_value(value: Any) -> str:
    """A 0/1 label (1 = positive), or a label name, to a label."""
    if isinstance(value, str):
        name = value.strip().lower()
        if name in SENTIMENTS:
            return name
        value = name
    if str(value) in ("1", "1.0"):
        return POSITIVE
    if str(value) in ("0", "0.0"):
        return NEGATIVE
    raise ValueError(f"label must be 0, 1 or one of {SENTIMENTS}, got {value!r}")


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


def load_file(path: Path, *, skip_invalid: bool = True) -> tuple[list[Review], int]:
    """Reviews from a CSV, JSONL or zip of them. Returns (reviews, rows skipped as invalid)."""
    reviews: list[Review] = []
    skipped = 0
    for record in read_records(Path(path)):
        try:
            reviews.append(review_from_record(record))
        except ValueError:
            if not skip_invalid:
                raise
            skipped += 1
    return reviews, skipped


def load_clickhouse(clickhouse: ClickHouseConfig, *, limit: int | None = None) -> list[Review]:
    """Rated reviews stored by the stream, labelled from their rating (the read itself is
    the ClickHouse seam's: :func:`stream.sink.reads.read_rated_reviews`)."""
    from stream.sink.connection import connect
    from stream.sink.reads import read_rated_reviews

    ch = connect(clickhouse)
    try:
        rows = read_rated_reviews(ch, limit=limit)
    finally:
        ch.close()
    return [
        Review(text=text, label=label_from_rating(rating), category=category or UNKNOWN_CATEGORY)
        for text, category, rating in rows
    ]


def reviews_sha256(reviews: Iterable[Review]) -> str:
    """Order-independent hash of a set of reviews (text, label, category)."""
    lines = sorted(f"{r.label}\t{r.category}\t{r.text}" for r in reviews)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
