"""The review store on both backends: exact round trips and exact aggregates after
duplicate delivery."""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import make_dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from stream.sink.backend import ClickHouse
from stream.sink.embedded import EmbeddedClickHouse
from stream.sink.store import REVIEW_COLUMNS, MinuteCounts, ReviewStore, month_scope, review_values
from tests.stream.sink.reviews import START, make_rows


def expected_minutes(rows: list[dict[str, Any]]) -> list[MinuteCounts]:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        minute = row["created_at"].replace(second=0)
        groups[(minute, row["product_id"], row["category"])].append(row)
    result = []
    for (minute, product, category), members in sorted(groups.items()):
        by_sentiment = Counter(r["sentiment"] for r in members)
        rated = [r["rating"] for r in members if r["rating"] is not None]
        result.append(
            MinuteCounts(
                minute=minute,
                product_id=product,
                category=category,
                reviews=len(members),
                negative=by_sentiment["negative"],
                neutral=by_sentiment["neutral"],
                positive=by_sentiment["positive"],
                confidence_sum=sum(r["confidence"] for r in members),
                rated=len(rated),
                rating_sum=sum(rated),
            )
        )
    return result


def expected_keywords(rows: list[dict[str, Any]]) -> list[tuple]:
    counts: Counter = Counter()
    for row in rows:
        if row["sentiment"] != "negative":
            continue
        hour = row["created_at"].replace(minute=0, second=0)
        for keyword in dict.fromkeys(row["keywords"] + row["complaint_keywords"]):
            is_complaint = keyword in row["complaint_keywords"]
            counts[(hour, row["product_id"], row["category"], keyword, is_complaint)] += 1
    return [(*key, n) for key, n in sorted(counts.items())]


@pytest.mark.clickhouse
def test_every_column_type_round_trips(ch: ClickHouse) -> None:
    rows = make_rows(40)
    rows[0] |= {"rating": None, "keywords": [], "complaint_keywords": [], "text": ""}
    rows[1] |= {"rating": 5, "sentiment": "positive", "text": "😀 emoji and ' and \\"}
    rows[2] |= {"confidence": 0.3, "prob_negative": 0.1, "prob_neutral": 1 / 3}
    store = ReviewStore(ch)
    assert store.write_reviews(rows) == 40
    stored = store.read_reviews()
    assert [r["review_id"] for r in stored] == sorted(r["review_id"] for r in rows)
    by_id = {r["review_id"]: r for r in rows}
    for got in stored:
        want = by_id[got["review_id"]]
        floats = [c for c in REVIEW_COLUMNS if c == "confidence" or c.startswith("prob_")]
        assert {c: got[c] for c in floats} == pytest.approx({c: want[c] for c in floats})
        assert {c: v for c, v in got.items() if c not in floats} == {
            c: v for c, v in want.items() if c not in floats
        }
        assert got["created_at"].tzinfo is not None


@pytest.mark.clickhouse
def test_datetimes_are_stored_as_utc_whatever_the_input_zone(ch: ClickHouse) -> None:
    row = make_rows(1)[0]
    row["created_at"] = START.astimezone(timezone(timedelta(hours=8)))  # 07:58 in Shanghai
    row["processed_at"] = START.replace(tzinfo=None)  # naive input is taken as UTC
    ReviewStore(ch).write_reviews([row])
    assert ch.query("SELECT toString(created_at), toString(processed_at) FROM reviews") == [
        ("2026-03-31 23:58:00", "2026-03-31 23:58:00")
    ]


@pytest.mark.clickhouse
def test_redelivery_and_overlapping_batches_leave_exact_counts(ch: ClickHouse) -> None:
    rows = make_rows(300)
    store = ReviewStore(ch)
    assert store.write_reviews(rows[:200]) == 200
    assert store.write_reviews(rows[100:300]) == 100
    assert store.write_reviews(rows) == 0
    assert store.write_reviews(rows[250:] + rows[250:]) == 0
    assert store.write_reviews([]) == 0

    assert store.count_final() == 300
    got = store.minute_counts()
    want = expected_minutes(rows)
    assert [(m.minute, m.product_id, m.category) for m in got] == [
        (m.minute, m.product_id, m.category) for m in want
    ]
    assert got == want  # confidences are binary fractions: their sums are exact
    assert store.negative_keyword_counts() == expected_keywords(rows)


@pytest.mark.clickhouse
def test_duplicates_inside_one_batch_are_written_once(ch: ClickHouse) -> None:
    rows = make_rows(10)
    store = ReviewStore(ch)
    assert store.write_reviews(rows + rows[::-1]) == 10
    assert ch.query("SELECT count() FROM reviews") == [(10,)]  # not even before merges


@pytest.mark.clickhouse
def test_counts_stay_exact_when_a_duplicate_bypasses_the_store(ch: ClickHouse) -> None:
    """Two writers racing on one review_id both insert; uniqExact states and FINAL absorb it."""
    rows = make_rows(120)
    table_rows = [review_values(row) for row in rows]
    ch.insert("reviews", REVIEW_COLUMNS, table_rows)
    ch.insert("reviews", REVIEW_COLUMNS, table_rows[:60])
    store = ReviewStore(ch)
    assert store.count_final() == 120
    want = expected_minutes(rows)
    got = store.minute_counts()
    assert [(g.reviews, g.negative, g.neutral, g.positive, g.rated) for g in got] == [
        (w.reviews, w.negative, w.neutral, w.positive, w.rated) for w in want
    ]
    assert store.negative_keyword_counts() == expected_keywords(rows)


@pytest.mark.clickhouse
def test_concurrent_writers_from_threads(ch: ClickHouse) -> None:
    rows = make_rows(400)
    store = ReviewStore(ch)
    batches = [rows[i : i + 50] for i in range(0, 400, 50)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        inserted = sum(pool.map(store.write_reviews, batches))
    assert inserted == 400
    assert store.count_final() == 400


@pytest.mark.clickhouse
def test_review_columns_are_the_migrated_table_columns(ch: ClickHouse) -> None:
    columns = ch.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'reviews'"
    )
    assert tuple(c[0] for c in columns) == REVIEW_COLUMNS


@pytest.mark.clickhouse
def test_rows_may_be_objects_with_one_attribute_per_column(ch: ClickHouse) -> None:
    """What the worker writes: frozen row objects (``stream.rows.ReviewRow``), not dicts."""
    Row = make_dataclass("Row", REVIEW_COLUMNS, frozen=True)
    rows = make_rows(20)
    store = ReviewStore(ch)
    assert store.write_reviews([Row(**row) for row in rows[:10]]) == 10
    assert store.write_reviews([Row(**row) for row in rows]) == 10  # mixed redelivery
    assert store.write_reviews(rows[5:15]) == 0
    assert [r["review_id"] for r in store.read_reviews()] == [r["review_id"] for r in rows]
    assert review_values(Row(**rows[0])) == review_values(rows[0])


@pytest.mark.clickhouse
def test_embedded_refuses_a_second_directory_with_a_clear_error(tmp_path: Path) -> None:
    first = EmbeddedClickHouse(tmp_path / "a", "db1")
    try:
        same = EmbeddedClickHouse(tmp_path / "a", "db2")  # same directory: shared, fine
        same.close()
        assert first.query("SELECT 1") == [(1,)]
        with pytest.raises(RuntimeError, match="one chdb directory at a time"):
            EmbeddedClickHouse(tmp_path / "b", "db1")
    finally:
        first.close()
    second = EmbeddedClickHouse(tmp_path / "b", "db1")  # free again once closed
    second.close()


def test_month_scope_covers_whole_months_across_a_year_end() -> None:
    created = [datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)]
    assert month_scope(created) == (
        " AND created_at >= toDateTime('2025-12-01 00:00:00', 'UTC')"
        " AND created_at < toDateTime('2026-02-01 00:00:00', 'UTC')"
    )


@pytest.mark.clickhouse
def test_redelivery_is_found_in_every_month_of_the_batch(ch: ClickHouse) -> None:
    rows = make_rows(60)
    for i, row in enumerate(rows):  # three months: Feb, Mar (START), Apr
        row["created_at"] = START + timedelta(days=31 * ((i % 3) - 1))
    store = ReviewStore(ch)
    assert store.write_reviews(rows[:30]) == 30
    assert store.write_reviews(rows) == 30
    assert store.count_final() == 60
    assert ch.query("SELECT count() FROM reviews") == [(60,)]
