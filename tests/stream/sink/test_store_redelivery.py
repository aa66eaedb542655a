"""Exact counts under every redelivery, on both backends (issue 11): copies of a review that
disagree on sentiment and model version count once, a half-applied insert is completed by the
retry, a retry that finds everything stored adds nothing, and a batch spanning more months
than ClickHouse lets one insert touch is stored whole. Expected counts are computed from the
input rows."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stream.sink.backend import ClickHouse
from stream.sink.store import REVIEW_COLUMNS, MinuteCounts, ReviewStore
from tests.stream.sink.reviews import make_rows

pytestmark = pytest.mark.clickhouse


def resolved(copies: list[dict[str, Any]]) -> str:
    """The sentiment a review counts under when its copies disagree: most negative first."""
    sentiments = {copy["sentiment"] for copy in copies}
    for sentiment in ("negative", "neutral", "positive"):
        if sentiment in sentiments:
            return sentiment
    raise AssertionError(sentiments)


def expected_counts(rows: list[dict[str, Any]]) -> list[tuple]:
    """(minute, product, category, reviews, negative, neutral, positive, rated, rating_sum)
    from the input: one review per review_id, whatever its copies say."""
    copies: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        copies[row["review_id"]].append(row)
    groups: dict[tuple, list] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for versions in copies.values():
        first = versions[0]
        key = (first["created_at"].replace(second=0), first["product_id"], first["category"])
        counts = groups[key]
        counts[0] += 1
        counts[1 + ("negative", "neutral", "positive").index(resolved(versions))] += 1
        if first["rating"] is not None:
            counts[4] += 1
            counts[5] += first["rating"]
    return [(*key, *counts) for key, counts in sorted(groups.items())]


def stored_counts(store: ReviewStore) -> list[tuple]:
    return [
        (
            m.minute,
            m.product_id,
            m.category,
            m.reviews,
            m.negative,
            m.neutral,
            m.positive,
            m.rated,
            m.rating_sum,
        )
        for m in store.minute_counts()
    ]


def disagreeing_copies(rows: list[dict[str, Any]], version: str) -> list[dict[str, Any]]:
    """The same reviews classified again by another model: every sentiment moved."""
    turn = {"negative": "positive", "neutral": "negative", "positive": "neutral"}
    later = timedelta(minutes=5)
    return [
        row
        | {"sentiment": turn[row["sentiment"]], "model_version": version}
        | {"confidence": 0.51, "processed_at": row["processed_at"] + later}
        for row in rows
    ]


def confidence_sum(store: ReviewStore) -> float:
    return sum(m.confidence_sum for m in store.minute_counts())


def test_insert_tokens_are_used_where_the_server_has_them(ch: ClickHouse) -> None:
    store = ReviewStore(ch)
    version = str(ch.query("SELECT version()")[0][0])
    assert store.insert_tokens == (not version.startswith("18."))
    applied = {int(v) for (v,) in ch.query("SELECT version FROM schema_migrations")}
    assert (40 in applied) == store.insert_tokens  # 0040 is skipped on 18.16, not recorded


def test_copies_that_disagree_count_once_through_the_store(ch: ClickHouse) -> None:
    rows = make_rows(120)
    store = ReviewStore(ch)
    store.write_reviews(rows, token="review.created:0:0-119")
    again = disagreeing_copies(rows[:60], "model-2")
    store.write_reviews(again, token="review.created:0:0-59")  # another batch boundary
    # With insert tokens both copies are stored and resolved when read; on 18.16 the store's
    # check keeps the first. Either way each review counts once.
    stored = rows + again if store.insert_tokens else rows
    assert stored_counts(store) == expected_counts(stored)
    assert store.count_final() == 120


def test_copies_that_disagree_count_once_when_both_got_past_every_check(ch: ClickHouse) -> None:
    """Two writers across a rebalance: both inserted, neither saw the other."""
    rows = make_rows(150, seed=3)
    ch.insert("reviews", REVIEW_COLUMNS, [[r[c] for c in REVIEW_COLUMNS] for r in rows])
    again = disagreeing_copies(rows[::2], "model-2")
    ch.insert("reviews", REVIEW_COLUMNS, [[r[c] for c in REVIEW_COLUMNS] for r in again])
    store = ReviewStore(ch)
    assert stored_counts(store) == expected_counts(rows + again)
    minutes = store.minute_counts()
    assert sum(m.reviews for m in minutes) == 150
    assert all(m.negative + m.neutral + m.positive == m.reviews for m in minutes)


def test_reputation_views_count_disagreeing_copies_once(ch: ClickHouse) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = make_rows(90, seed=11)
    for i, row in enumerate(rows):
        row["created_at"] = now - timedelta(minutes=10 + i % 30)
        row["processed_at"] = now
    again = disagreeing_copies(rows[:45], "model-2")
    for batch in (rows, again):
        ch.insert("reviews", REVIEW_COLUMNS, [[r[c] for c in REVIEW_COLUMNS] for r in batch])
    copies: dict[str, list] = defaultdict(list)
    for row in rows + again:
        copies[row["review_id"]].append(row)
    want: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for versions in copies.values():
        first, sentiment = versions[0], resolved(versions)
        counts = want[first["product_id"]]
        counts[0] += 1
        counts[1] += sentiment == "negative"
        counts[2] += sentiment == "positive"
        if first["rating"] is not None:
            counts[3] += 1
            label = (
                "positive"
                if first["rating"] >= 4
                else "neutral"
                if first["rating"] == 3
                else "negative"
            )
            counts[4] += sentiment == label
    got = {
        product: [int(total), int(negative), int(positive), int(rated), int(agreeing)]
        for product, total, negative, positive, rated, agreeing in ch.query(
            "SELECT product_id, reviews_1h, negative_1h, positive_1h, rated_24h, agreeing_24h "
            "FROM product_reputation"
        )
    }
    assert got == dict(want)
    [(total,)] = ch.query("SELECT sum(reviews_24h) FROM category_reputation")
    assert int(total) == 90


def test_a_half_applied_insert_is_completed_by_the_retry(ch: ClickHouse) -> None:
    """A materialized view fails after `reviews` (and maybe other views) took the rows."""
    ch.execute("CREATE TABLE IF NOT EXISTS fault_sink (x UInt8) ENGINE = MergeTree ORDER BY x")
    ch.execute(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS zz_fault_mv TO fault_sink AS "
        "SELECT throwIf(length(review_id) > 0) AS x FROM reviews"
    )
    rows = make_rows(80, seed=5)
    store = ReviewStore(ch)
    token = "review.created:2:1000-1079"
    with pytest.raises(Exception, match=r"(?i)throwIf|value passed|FUNCTION_THROW"):
        store.write_reviews(rows, token=token)
    assert 0 < store.count_final() < 80  # half-applied: rows of the first month, views maybe
    ch.execute("DROP TABLE zz_fault_mv")
    assert store.write_reviews(rows, token=token) == 80  # the retry: same rows, same token
    assert stored_counts(store) == expected_counts(rows)
    if store.insert_tokens:  # each view took the block once: even the sums are exact
        assert confidence_sum(store) == pytest.approx(sum(r["confidence"] for r in rows))


class CommittedThenTimedOut:
    """The server commits the insert, then the client gives up waiting (``fail`` times)."""

    def __init__(self, ch: ClickHouse, fail: int = 1) -> None:
        self.ch, self.fail, self.database = ch, fail, ch.database

    def query(self, sql: str) -> list[tuple]:
        return self.ch.query(sql)

    def execute(self, sql: str) -> None:
        self.ch.execute(sql)

    def insert(self, table, columns, rows, settings=None) -> None:
        self.ch.insert(table, columns, rows, settings)
        if self.fail:
            self.fail -= 1
            raise TimeoutError("timed out waiting for the server (it committed)")

    def close(self) -> None:
        self.ch.close()


def test_a_retry_after_a_client_timeout_counts_once(ch: ClickHouse) -> None:
    rows = make_rows(60, seed=9)
    store = ReviewStore(CommittedThenTimedOut(ch))
    token = "review.created:1:0-59"
    with pytest.raises(TimeoutError):
        store.write_reviews(rows, token=token)
    store.write_reviews(rows, token=token)
    assert stored_counts(store) == expected_counts(rows)
    assert store.count_final() == 60
    if store.insert_tokens:
        assert confidence_sum(store) == pytest.approx(sum(r["confidence"] for r in rows))
        [(copies,)] = ch.query("SELECT count() FROM reviews")
        assert copies == 60  # the retry's block was dropped as a duplicate


def test_a_repeated_batch_adds_nothing(ch: ClickHouse) -> None:
    rows = make_rows(50, seed=13)
    store = ReviewStore(ch)
    store.write_reviews(rows, token="review.created:0:0-49")
    store.write_reviews(rows, token="review.created:0:0-49")
    store.write_reviews(rows)  # no token: the read-before-write check
    assert stored_counts(store) == expected_counts(rows)
    assert confidence_sum(store) == pytest.approx(sum(r["confidence"] for r in rows))


def test_a_batch_spanning_150_months_is_stored_whole(ch: ClickHouse) -> None:
    """More partitions than max_partitions_per_insert_block (100) allows one insert."""
    rows = make_rows(300, seed=17)
    start = datetime(1995, 1, 15, 12, 0, tzinfo=UTC)
    for i, row in enumerate(rows):
        months = i % 150
        row["created_at"] = start.replace(year=1995 + months // 12, month=1 + months % 12)
    store = ReviewStore(ch)
    assert store.write_reviews(rows, token="review.created:0:0-299") == 300
    assert store.count_final() == 300
    [(months,)] = ch.query("SELECT uniqExact(toYYYYMM(created_at)) FROM reviews")
    assert months == 150
    assert sum(m.reviews for m in store.minute_counts()) == 300
    assert isinstance(store.minute_counts()[0], MinuteCounts)
