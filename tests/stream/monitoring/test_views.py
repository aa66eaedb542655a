"""The monitoring aggregates on both backends: ``feedback_minute`` and ``traffic_minute`` hold
exactly the counts computed from the input (redelivery included), their bins are
``model.profile``'s, the ``model_feedback`` view, and the backfill of older reviews."""

from __future__ import annotations

import random
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from model.labels import SENTIMENTS, label_from_rating
from model.profile import CONFIDENCE_EDGES, TEXT_LENGTH_EDGES, bin_index
from stream.config import WorkerConfig
from stream.rows import ReviewRow
from stream.sink.backend import ClickHouse
from stream.sink.connection import connect
from stream.sink.migrations import migrate, migrations_dir, strip_comments
from stream.sink.store import REVIEW_COLUMNS, ReviewStore, review_values
from tests.stream.monitoring.traffic import review_row

pytestmark = pytest.mark.clickhouse

START = datetime(2026, 3, 31, 23, 57, tzinfo=UTC)  # spans a month boundary (partitions)
TEXT = "质量很好物流也快满意包装" * 40


def random_rows(count: int, seed: int = 11) -> list[ReviewRow]:
    rng = random.Random(seed)
    return [
        review_row(
            f"r-{i:04d}",
            rng.choice(["手机", "外卖"]),
            rng.choice(SENTIMENTS),
            START + timedelta(seconds=rng.randint(0, 299)),
            confidence=rng.choice([0.42, 0.58, 0.77, 0.93]),
            rating=rng.choice([None, 1, 2, 3, 4, 5]),
            text=TEXT[: rng.randint(1, 400)],
            tokens=rng.randint(1, 120),
            unknown_tokens=rng.randint(0, 2),
            model_version=rng.choice(["v1", "v2"]),
        )
        for i in range(count)
    ]


def minute(row: ReviewRow) -> datetime:
    return row.created_at.replace(second=0)


def expected_feedback(rows: list[ReviewRow]) -> Counter:
    return Counter(
        (minute(r), r.category, r.model_version, r.sentiment, label_from_rating(r.rating))
        for r in rows
        if r.rating is not None
    )


def stored_feedback(ch: ClickHouse) -> Counter:
    rows = ch.query(
        "SELECT minute, category, model_version, sentiment, rated, uniqExactMerge(reviews) "
        "FROM feedback_minute GROUP BY minute, category, model_version, sentiment, rated"
    )
    return Counter({tuple(row[:5]): int(row[5]) for row in rows})


def expected_traffic(rows: list[ReviewRow]) -> tuple[Counter, Counter]:
    counts = Counter(
        (
            minute(r),
            r.category,
            r.model_version,
            r.sentiment,
            bin_index(CONFIDENCE_EDGES, r.confidence),
            bin_index(TEXT_LENGTH_EDGES, len(r.text)),
        )
        for r in rows
    )
    tokens: Counter = Counter()
    for r in rows:
        tokens[(r.category, "tokens")] += r.tokens
        tokens[(r.category, "unknown")] += r.unknown_tokens
    return counts, tokens


def stored_traffic(ch: ClickHouse) -> tuple[Counter, Counter]:
    rows = ch.query(
        "SELECT minute, category, model_version, sentiment, confidence_bin, length_bin, "
        "uniqExactMerge(reviews) FROM traffic_minute "
        "GROUP BY minute, category, model_version, sentiment, confidence_bin, length_bin"
    )
    counts = Counter({tuple(row[:6]): int(row[6]) for row in rows})
    tokens: Counter = Counter()
    for category, tok, unk in ch.query(
        "SELECT category, sumMerge(token_sum), sumMerge(unknown_token_sum) FROM traffic_minute "
        "GROUP BY category"
    ):
        tokens[(category, "tokens")] += int(tok)
        tokens[(category, "unknown")] += int(unk)
    return counts, tokens


def test_feedback_and_traffic_match_the_input_after_redelivery(ch: ClickHouse) -> None:
    rows = random_rows(300)
    store = ReviewStore(ch)
    assert store.write_reviews(rows[:200]) == 200
    assert store.write_reviews(rows[100:]) == 100  # a redelivered, overlapping batch
    assert store.write_reviews(rows[:10] + rows[:10]) == 0
    want = expected_feedback(rows)
    assert {key[4] for key in want} == set(SENTIMENTS)  # every rated label occurs
    assert stored_feedback(ch) == want
    assert stored_traffic(ch) == expected_traffic(rows)


def test_counts_stay_exact_when_a_duplicate_bypasses_the_store(ch: ClickHouse) -> None:
    """Two writers racing on one review_id both insert: the uniqExact states absorb it."""
    rows = random_rows(120, seed=5)
    values = [review_values(row) for row in rows]
    ch.insert("reviews", REVIEW_COLUMNS, values)
    ch.insert("reviews", REVIEW_COLUMNS, values[:60])
    assert stored_feedback(ch) == expected_feedback(rows)
    counts, _ = stored_traffic(ch)
    assert counts == expected_traffic(rows)[0]


def test_every_star_rating_maps_as_in_training(ch: ClickHouse) -> None:
    rows = [
        review_row(f"s{stars}", "手机", "positive", START, rating=stars) for stars in range(1, 6)
    ]
    ReviewStore(ch).write_reviews(rows)
    by_label = dict(
        ch.query(
            "SELECT toString(rated), uniqExactMerge(reviews) FROM feedback_minute GROUP BY rated"
        )
    )
    assert by_label == {"negative": 2, "neutral": 1, "positive": 2}
    assert by_label == dict(Counter(label_from_rating(stars) for stars in range(1, 6)))


def test_bins_are_model_profile_bins(ch: ClickHouse) -> None:
    confidences = [0.34, *(e + d for e in CONFIDENCE_EDGES[1:] for d in (-0.002, 0, 0.002)), 0.999]
    lengths = [1, *(int(e) + d for e in TEXT_LENGTH_EDGES[1:] for d in (-1, 0)), 400]
    rows = [
        review_row(f"c{i}", "手机", "positive", START, confidence=c)
        for i, c in enumerate(confidences)
    ] + [
        review_row(f"l{i}", "外卖", "negative", START, text=TEXT[:n], confidence=0.6)
        for i, n in enumerate(lengths)
    ]
    assert [len(row.text) for row in rows[len(confidences) :]] == lengths
    ReviewStore(ch).write_reviews(rows)
    stored = stored_traffic(ch)[0]
    assert stored == expected_traffic(rows)[0]
    assert {key[4] for key in stored if key[1] == "手机"} == set(range(len(CONFIDENCE_EDGES)))
    assert {key[5] for key in stored if key[1] == "外卖"} == set(range(len(TEXT_LENGTH_EDGES)))


def test_the_model_feedback_view(ch: ClickHouse) -> None:
    now = datetime.now(UTC)
    recent, earlier = now - timedelta(minutes=5), now - timedelta(hours=3)
    rows = [
        review_row("a1", "手机", "positive", recent, rating=5),
        review_row("a2", "手机", "negative", recent, rating=1),
        review_row("a3", "手机", "neutral", recent, rating=4),  # neutral, rated clearly
        review_row("a4", "手机", "positive", earlier, rating=1),  # positive, rated low
        review_row("a5", "手机", "neutral", earlier, rating=3),
        review_row("a6", "手机", "negative", earlier, rating=5),  # negative, rated high
        review_row("a7", "手机", "positive", earlier),  # no rating: not feedback
        review_row("a8", "手机", "positive", now - timedelta(hours=30), rating=5),  # too old
        review_row("b1", "手机", "positive", recent, rating=5, model_version="v2"),
    ]
    ReviewStore(ch).write_reviews(rows)
    columns = (
        "category, model_version, rated_1h, agreeing_1h, agreement_1h, rated_24h, "
        "agreeing_24h, agreement_24h, clear_rated_24h, clear_agreeing_24h, "
        "clear_agreement_24h, neutral_but_rated_clear_24h, positive_but_rated_low_24h, "
        "negative_but_rated_high_24h"
    )
    got = ch.query(f"SELECT {columns} FROM model_feedback ORDER BY model_version")
    assert got[0][:2] == ("手机", "v1")
    assert got[0][2:] == pytest.approx((3, 2, 2 / 3, 6, 3, 0.5, 5, 2, 0.4, 1, 1, 1))
    assert got[1] == pytest.approx(("手机", "v2", 1, 1, 1.0, 1, 1, 1.0, 1, 1, 1.0, 0, 0, 0))


@pytest.mark.parametrize("backend", ["native", "embedded"])
def test_backfill_of_existing_reviews(
    backend: str, make_config: Callable[..., WorkerConfig], tmp_path: Path
) -> None:
    earlier = tmp_path / "before-monitoring"
    earlier.mkdir()
    for path in migrations_dir().glob("*.sql"):
        if int(path.name[:4]) < 20:
            shutil.copy(path, earlier / path.name)
    before = random_rows(80, seed=3)
    after = [replace(r, review_id=f"new-{r.review_id}") for r in random_rows(40, seed=4)]
    ch = connect(make_config(clickhouse_backend=backend).clickhouse)
    try:
        migrate(ch, earlier)
        old = REVIEW_COLUMNS[: REVIEW_COLUMNS.index("tokens")]  # as stored before 0020
        ch.insert("reviews", old, [review_values(row)[: len(old)] for row in before])
        applied = migrate(ch)
        assert {"0020_reviews_token_counts", "0023_monitoring_backfill"} <= set(applied)
        assert ReviewStore(ch).write_reviews(after) == 40  # through the live views
        # rows stored before 0020 read 0 tokens: only the new rows' tokens are summed
        everything = [replace(r, tokens=0, unknown_tokens=0) for r in before] + after
        assert stored_feedback(ch) == expected_feedback(everything)
        assert stored_traffic(ch) == expected_traffic(everything)
        # The backfill again changes nothing: same states, zero sums.
        backfill = (migrations_dir() / "0023_monitoring_backfill.sql").read_text()
        for statement in backfill.split(";"):
            if strip_comments(statement):
                ch.execute(strip_comments(statement))
        assert stored_feedback(ch) == expected_feedback(everything)
        assert stored_traffic(ch) == expected_traffic(everything)
    finally:
        ch.close()
