"""The analyst views return the expected figures on hand-built data, on both backends,
and stay exact when reviews are delivered twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stream.reputation import queries, reports
from stream.reputation.grid import floor_hour, floor_minute
from stream.reputation.lexicon import LearnedWord, Lexicon
from stream.rows import ReviewRow
from stream.sink.backend import ClickHouse
from stream.sink.store import REVIEW_COLUMNS, ReviewStore, review_values
from tests.stream.reputation.scenario import COMPLAINT_TEXT, review_row

pytestmark = pytest.mark.clickhouse


def hand_built(now: datetime) -> list[ReviewRow]:
    """Product A: a worse last hour than the hour before; product B: two complaints."""
    rows = []

    def add(product: str, sentiment: str, minutes_ago: float, **kw) -> None:
        n = len(rows)
        rows.append(
            review_row(
                f"v{n}", product, "手机", sentiment, now - timedelta(minutes=minutes_ago), **kw
            )
        )

    # A, last hour: 4 negative (3 with complaints), 2 neutral, 4 positive. Four carry a
    # rating: 1 on a negative (agrees), 3 on a neutral (agrees), 5 and 2 on positives.
    add("A", "negative", 10, text=COMPLAINT_TEXT, rating=1)
    add("A", "negative", 11, text=COMPLAINT_TEXT)
    add("A", "negative", 12, text=COMPLAINT_TEXT)
    add("A", "negative", 13)
    add("A", "neutral", 14, rating=3)
    add("A", "neutral", 15)
    add("A", "positive", 16, rating=5)
    add("A", "positive", 17, rating=2)
    add("A", "positive", 18)
    add("A", "positive", 19)
    # A, the hour before: 1 negative, 4 positive.
    add("A", "negative", 90)
    for m in range(4):
        add("A", "positive", 95 + m)
    # A, earlier in the last 24 h: 5 positive.
    for m in range(5):
        add("A", "positive", 300 + m)
    # A, the 24 h before that: 2 negative (with complaints), 2 positive.
    add("A", "negative", 30 * 60, text=COMPLAINT_TEXT)
    add("A", "negative", 30 * 60 + 1, text=COMPLAINT_TEXT)
    add("A", "positive", 30 * 60 + 2)
    add("A", "positive", 30 * 60 + 3)
    # B, last hour: 2 negative complaints.
    add("B", "negative", 5, text=COMPLAINT_TEXT)
    add("B", "negative", 6, text="屏幕坏了，物流太慢了")
    return rows


def load(ch: ClickHouse, rows: list[ReviewRow]) -> None:
    store = ReviewStore(ch)
    store.write_reviews(rows)
    store.write_reviews(rows[:5])  # redelivered: the store skips them
    # A duplicate that slips past the store (two workers at once) reaches the aggregates.
    ch.insert("reviews", REVIEW_COLUMNS, [review_values(r) for r in rows[:8]])


def by_key(rows: list[tuple], columns: list[str]) -> dict[str, dict]:
    return {row[0]: dict(zip(columns, row, strict=True)) for row in rows}


PRODUCT_COLUMNS = [
    "product_id",
    "category",
    "reviews_1h",
    "negative_1h",
    "negative_ratio_1h",
    "net_score_1h",
    "reviews_prev_1h",
    "negative_ratio_prev_1h",
    "net_score_prev_1h",
    "negative_ratio_trend_1h",
    "net_score_trend_1h",
    "reviews_24h",
    "negative_ratio_24h",
    "net_score_24h",
    "reviews_prev_24h",
    "negative_ratio_prev_24h",
    "net_score_prev_24h",
    "negative_ratio_trend_24h",
    "net_score_trend_24h",
    "rated_24h",
    "agreeing_24h",
    "agreement_24h",
    "positive_but_rated_low_24h",
    "negative_but_rated_high_24h",
]


def test_reputation_views(ch: ClickHouse) -> None:
    load(ch, hand_built(datetime.now(UTC)))

    products = by_key(
        ch.query(f"SELECT {', '.join(PRODUCT_COLUMNS)} FROM product_reputation"), PRODUCT_COLUMNS
    )
    a = products["A"]
    assert a["category"] == "手机"
    assert (a["reviews_1h"], a["negative_1h"]) == (10, 4)
    assert a["negative_ratio_1h"] == pytest.approx(0.4)
    assert a["net_score_1h"] == pytest.approx(0.0)
    assert a["reviews_prev_1h"] == 5
    assert a["negative_ratio_prev_1h"] == pytest.approx(0.2)
    assert a["net_score_prev_1h"] == pytest.approx(0.6)
    assert a["negative_ratio_trend_1h"] == pytest.approx(0.2)
    assert a["net_score_trend_1h"] == pytest.approx(-0.6)
    assert a["reviews_24h"] == 20
    assert a["negative_ratio_24h"] == pytest.approx(0.25)  # 5 of 20
    assert a["net_score_24h"] == pytest.approx(0.4)  # (13 - 5) / 20
    assert a["reviews_prev_24h"] == 4
    assert a["negative_ratio_prev_24h"] == pytest.approx(0.5)
    assert a["net_score_prev_24h"] == pytest.approx(0.0)
    assert a["negative_ratio_trend_24h"] == pytest.approx(-0.25)
    assert a["net_score_trend_24h"] == pytest.approx(0.4)
    assert (a["rated_24h"], a["agreeing_24h"]) == (4, 3)
    assert a["agreement_24h"] == pytest.approx(0.75)
    assert (a["positive_but_rated_low_24h"], a["negative_but_rated_high_24h"]) == (1, 0)
    b = products["B"]
    assert (b["reviews_1h"], b["negative_1h"], b["negative_ratio_1h"]) == (2, 2, 1.0)
    assert b["net_score_1h"] == pytest.approx(-1.0)
    assert b["rated_24h"] == 0 and b["agreement_24h"] == 0.0
    assert b["negative_ratio_trend_1h"] is None  # nothing the hour before: no trend
    assert b["net_score_trend_24h"] is None

    category_columns = ["category", "reviews_1h", "negative_1h", "net_score_1h", "reviews_24h"]
    categories = by_key(
        ch.query(f"SELECT {', '.join(category_columns)} FROM category_reputation"),
        category_columns,
    )
    phones = categories["手机"]
    assert (phones["reviews_1h"], phones["negative_1h"], phones["reviews_24h"]) == (12, 6, 22)
    assert phones["net_score_1h"] == pytest.approx((4 - 6) / 12)

    complaints = ch.query(
        "SELECT product_id, keyword, reviews_1h, reviews_24h, reviews_prev_24h "
        "FROM product_top_complaints"
    )
    assert sorted(complaints) == sorted(
        [("A", word, 3, 3, 2) for word in ("漏水", "质量差", "退货")]
        + [("B", word, 1, 1, 0) for word in ("漏水", "质量差", "退货", "损坏", "发货慢")]
    )


def test_reports_read_the_views(ch: ClickHouse) -> None:
    load(ch, hand_built(datetime.now(UTC)))

    top = reports.top_products(ch, period="1h", min_reviews=2)
    assert [(r["product_id"], r["reviews"], r["negative"]) for r in top] == [
        ("B", 2, 2),
        ("A", 10, 4),
    ]
    assert reports.top_products(ch, period="24h", min_reviews=3)[0]["product_id"] == "A"

    rising = reports.rising_complaints(ch, hours=24)
    assert sorted((r["product_id"], r["keyword"], r["current"], r["previous"]) for r in rising) == (
        sorted(
            [("A", word, 3, 2) for word in ("漏水", "质量差", "退货")]
            + [("B", word, 1, 0) for word in ("漏水", "质量差", "退货", "损坏", "发货慢")]
        )
    )
    assert rising[0]["change"] == 1
    text = reports.format_table(rising, ("product_id", "keyword", "current", "previous", "change"))
    assert "漏水" in text and "+1" in text


def test_alert_engine_reads(ch: ClickHouse) -> None:
    """What the alert engine reads from ClickHouse for the same hand-built data: exact per
    minute and per hour after duplicate delivery, complaints by the curated lexicon and by
    learned words."""
    now = datetime.now(UTC)
    rows = hand_built(now)
    load(ch, rows)
    minute = floor_minute(now)
    assert queries.fetch_watermark(ch, now) == floor_minute(now - timedelta(minutes=5))
    assert queries.fetch_watermark(ch, now - timedelta(days=3)) is None

    hour_ago = minute - timedelta(minutes=59)

    def totals(lexicon: Lexicon) -> dict[str, list[int]]:
        series = queries.fetch_minutes(ch, hour_ago, minute + timedelta(minutes=1), lexicon)
        assert {s.category for s in series} == {"手机"}
        return {s.product_id: [sum(s.total), sum(s.negative), sum(s.complaint)] for s in series}

    # A: 4 negative (3 complaints) of 10; B: 2 negative complaints.
    assert totals(Lexicon()) == {"A": [10, 4, 3], "B": [2, 2, 2]}
    series = queries.fetch_minutes(ch, hour_ago, minute + timedelta(minutes=1), Lexicon())
    newest = max(max(s.minutes) for s in series)
    assert newest == int(floor_minute(now - timedelta(minutes=5)).timestamp())

    # A learned word of the category turns A's plain negative review into a complaint.
    plain = next(r for r in rows if r.sentiment == "negative" and not r.complaint_keywords)
    word = plain.keywords[0]
    learned = Lexicon({"手机": (LearnedWord(word, 1, 1, 9.0),)})
    assert totals(learned)["A"] == [10, 4, 4]

    span = (floor_hour(now) - timedelta(hours=48), floor_hour(now) + timedelta(hours=1))
    a = [h["A"] for h in queries.fetch_hours(ch, *span).values() if "A" in h]
    assert sum(h.total for h in a) == 24
    assert sum(h.negative for h in a) == 7
    assert {h.category for h in a} == {"手机"}
    complaints = queries.fetch_hour_complaints(ch, *span, Lexicon())
    assert sum(h.get("A", 0) for h in complaints.values()) == 5
    assert all(hour.minute == 0 for hour in complaints)

    top = queries.fetch_top_complaints(ch, "A", hour_ago, minute + timedelta(minutes=1), Lexicon())
    assert sorted(top) == [("漏水", 3), ("质量差", 3), ("退货", 3)]


def test_keyword_statistics_for_the_lexicon(ch: ClickHouse) -> None:
    now = datetime.now(UTC)
    rows = hand_built(now)
    ReviewStore(ch).write_reviews(rows)
    stats, totals = queries.fetch_keyword_stats(
        ch, now - timedelta(hours=48), now + timedelta(minutes=1), min_reviews=2
    )
    assert totals == {"手机": (9, 26)}
    expected = {}
    for row in rows:
        for word in row.keywords:
            counts = expected.setdefault(word, [0, 0])
            counts[0] += row.sentiment == "negative"
            counts[1] += 1
    assert {(s.keyword, s.negative, s.total) for s in stats} == {
        (word, neg, total) for word, (neg, total) in expected.items() if neg >= 2
    }
    assert {s.category for s in stats} == {"手机"}
