"""The shadow table on both backends: idempotent by (review_id, candidate), exact reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stream.sink.backend import ClickHouse
from stream.sink.shadow import (
    ShadowCell,
    ShadowStore,
    read_shadow_cells,
    read_shadow_versions,
)

CREATED = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)


def shadow_row(i: int, *, candidate: str = "cand", served: str = "srv", **fields) -> dict:
    return {
        "review_id": f"r-{i}",
        "candidate_version": candidate,
        "served_version": served,
        "category": "手机",
        "rating": 5,
        "served_sentiment": "positive",
        "candidate_sentiment": "positive",
        "served_confidence": 0.9,
        "candidate_confidence": 0.8,
        "candidate_prob_negative": 0.1,
        "candidate_prob_neutral": 0.1,
        "candidate_prob_positive": 0.8,
        "served_seconds": 0.001,
        "candidate_seconds": 0.002,
        "created_at": CREATED,
        "scored_at": datetime(2026, 11, 27, 5, 1, tzinfo=UTC),
        **fields,
    }


@pytest.mark.clickhouse
def test_rescoring_replaces_and_reads_count_each_review_once(ch: ClickHouse) -> None:
    store = ShadowStore(ch)
    rows = [shadow_row(i) for i in range(4)]
    rows[3] |= {"rating": 0, "candidate_sentiment": "negative", "served_sentiment": "neutral"}
    assert store.write_shadow([*rows, rows[0]]) == 4  # a duplicate inside one batch
    # Redelivered and scored again later: the same key, one row after FINAL.
    rescored = shadow_row(1, scored_at=datetime(2026, 11, 27, 6, 0, tzinfo=UTC))
    store.write_shadow([rescored])
    store.write_shadow([shadow_row(1, candidate="other")])  # another candidate: its own row
    store.write_shadow([shadow_row(9, served="older")])  # compared with another served model
    assert ch.query("SELECT count() FROM shadow_predictions FINAL")[0][0] == 6
    cells = read_shadow_cells(ch, "cand", "srv")
    assert cells == [
        ShadowCell("neutral", "negative", 0, 1, pytest.approx(0.001), pytest.approx(0.002)),
        ShadowCell("positive", "positive", 5, 3, pytest.approx(0.003), pytest.approx(0.006)),
    ]
    assert read_shadow_versions(ch, "cand") == [("srv", 4), ("older", 1)]
    assert read_shadow_cells(ch, "nobody", "srv") == []
