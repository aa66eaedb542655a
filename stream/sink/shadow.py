"""The ``shadow_predictions`` table (migration 0025): writes of shadow scoring, idempotent by
(review_id, candidate version), and the reads ``reviewpulse shadow status|promote`` compare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from stream.sink.backend import ClickHouse
from stream.sink.sql import quote

SHADOW_COLUMNS: tuple[str, ...] = (
    "review_id",
    "candidate_version",
    "served_version",
    "category",
    "rating",
    "served_sentiment",
    "candidate_sentiment",
    "served_confidence",
    "candidate_confidence",
    "candidate_prob_negative",
    "candidate_prob_neutral",
    "candidate_prob_positive",
    "served_seconds",
    "candidate_seconds",
    "created_at",
    "scored_at",
)


class ShadowCell(NamedTuple):
    """Reviews that the served and the candidate model labelled alike, with one rating
    (0 = none), and the two models' summed forward seconds over them."""

    served: str
    candidate: str
    rating: int
    reviews: int
    served_seconds: float
    candidate_seconds: float


class ShadowStore:
    """Writes shadow rows on one ClickHouse backend. Blocking."""

    def __init__(self, ch: ClickHouse) -> None:
        self.ch = ch

    def write_shadow(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert ``rows`` (mappings with :data:`SHADOW_COLUMNS`); a review scored again by
        the same candidate replaces its row (ReplacingMergeTree, read with FINAL)."""
        unique: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            unique.setdefault(
                (row["review_id"], row["candidate_version"]),
                [row[column] for column in SHADOW_COLUMNS],
            )
        if unique:
            self.ch.insert("shadow_predictions", SHADOW_COLUMNS, list(unique.values()))
        return len(unique)


def read_shadow_cells(ch: ClickHouse, candidate: str, served: str) -> list[ShadowCell]:
    """The comparison of ``candidate`` with ``served`` over every review both scored,
    grouped by the two labels and the rating (each review once: FINAL)."""
    rows = ch.query(
        "SELECT toString(served_sentiment), toString(candidate_sentiment), rating, count(), "
        "sum(served_seconds), sum(candidate_seconds) FROM shadow_predictions FINAL "
        f"WHERE candidate_version = {quote(candidate)} AND served_version = {quote(served)} "
        "GROUP BY served_sentiment, candidate_sentiment, rating "
        "ORDER BY served_sentiment, candidate_sentiment, rating"
    )
    return [
        ShadowCell(str(s), str(c), int(r), int(n), float(ss), float(cs))
        for s, c, r, n, ss, cs in rows
    ]


def read_shadow_versions(ch: ClickHouse, candidate: str) -> list[tuple[str, int]]:
    """``(served_version, reviews)`` that ``candidate`` was compared with, most first."""
    rows = ch.query(
        "SELECT served_version, count() FROM shadow_predictions FINAL "
        f"WHERE candidate_version = {quote(candidate)} "
        "GROUP BY served_version ORDER BY count() DESC, served_version"
    )
    return [(str(version), int(n)) for version, n in rows]
