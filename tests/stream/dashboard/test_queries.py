"""The live page's reads on both backends (ClickHouse 18.16 and chdb 26.x), against rows the
stream's own transforms built, with every figure known in advance."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from stream.config import PROJECT_ROOT, MonitorConfig
from stream.dashboard import assemble, queries
from stream.dashboard.queries import Span
from stream.reputation.alerts import ALERT_COLUMNS, PUBLISHED, alert_row
from stream.reputation.queries import ALERTS_TABLE
from stream.rows import ReviewRow
from stream.sink.backend import ClickHouse
from stream.sink.store import ReviewStore
from tests.stream.reputation.scenario import COMPLAINT_TEXT, review_row

pytestmark = pytest.mark.clickhouse

XSS = "<img src=x onerror=alert(1)>"
NOW = datetime.now(UTC).replace(second=30, microsecond=0)
MINUTE = timedelta(minutes=1)


def shop() -> list[ReviewRow]:
    """A (手机): 10 reviews in the last hour, 8 negative with complaints, and 10 the hour
    before, 2 negative. B (手机): 10 in the last hour, 1 negative. C (衣服): 3, all
    negative (below min_reviews). The XSS product: 6 positive reviews, the newest with the
    XSS text as its stored text. Ratings on A's last hour: 5 stars on the 2 positive, 1 star
    on the rest."""
    rows = []

    def add(product: str, cat: str, sentiment: str, at: datetime, **kw: object) -> None:
        rows.append(review_row(f"{product}-{len(rows)}", product, cat, sentiment, at, **kw))

    for i in range(10):
        at = NOW - (i * 5 + 1) * MINUTE
        negative = i < 8
        add(
            "A",
            "手机",
            "negative" if negative else "positive",
            at,
            text=COMPLAINT_TEXT if negative else None,
            rating=1 if negative else 5,
        )
        add("A", "手机", "negative" if i < 2 else "positive", at - 60 * MINUTE)
        add("B", "手机", "negative" if i < 1 else "positive", at)
    for i in range(3):
        add("C", "衣服", "negative", NOW - (i + 1) * MINUTE)
    for i in range(6):
        add(XSS, "衣服", "positive", NOW - (i + 2) * MINUTE)
    # The worker stores cleaned text (tags stripped); another writer might not.
    rows[-6] = replace(rows[-6], text=XSS)
    return rows


def test_the_page_reads_on_both_backends(ch: ClickHouse) -> None:
    rows = shop()
    ReviewStore(ch).write_reviews(rows)
    ReviewStore(ch).write_reviews(rows[:5])  # redelivered: counted once
    hour = Span.ending_at(NOW, timedelta(hours=1))

    ranked = queries.ranking(ch, "product_id", hour, min_reviews=5, limit=10)
    assert [r["product_id"] for r in ranked] == ["A", "B", XSS]
    a = ranked[0]
    assert (a["reviews"], a["negative"], a["previous_reviews"]) == (10, 8, 10)
    assert a["negative_ratio"] == pytest.approx(0.8)
    assert a["trend"] == pytest.approx(0.8 - 0.2)
    assert ranked[2]["trend"] is None  # no reviews the hour before

    categories = queries.ranking(ch, "category", hour, min_reviews=0, limit=10)
    assert [(r["category"], r["reviews"], r["negative"]) for r in categories] == [
        ("手机", 20, 9),
        ("衣服", 9, 3),
    ]

    spark = Span.ending_at(NOW, timedelta(hours=3))
    lines = queries.sparklines(ch, "product_id", ["A", "B"], spark, 300)
    assert set(lines) == {"A", "B"} and len(lines["A"]) == 36
    seen = [v for v in lines["A"] if v is not None]
    assert len(seen) == 20 and sorted(seen).count(1.0) == 10  # one review per 5-min bucket

    expected = Counter(
        k
        for r in rows
        if r.product_id == "A" and r.sentiment == "negative"
        for k in r.complaint_keywords
    )
    words = queries.top_complaints(ch, "product_id", ["A", "B"], hour, per_key=3)
    assert [w["keyword"] for w in words["A"]] == sorted(expected, key=lambda k: (-expected[k], k))[
        :3
    ]
    assert all(w["reviews"] == expected[w["keyword"]] for w in words["A"])
    assert "B" not in words  # its negative review has no complaint keyword

    summary = queries.product_summary(ch, "A", NOW)
    assert summary is not None
    assert summary["reviews_1h"] == 10 and summary["reviews_24h"] == 20
    assert summary["negative_ratio_24h"] == pytest.approx(0.5)
    assert summary["rated_24h"] == 10 and summary["agreement_24h"] == pytest.approx(1.0)
    assert queries.product_summary(ch, "nobody", NOW) is None

    minutes = queries.product_minutes(ch, "A", Span.ending_at(NOW, timedelta(hours=6)))
    assert len(minutes["minutes"]) == 6 * 60  # every minute, quiet ones 0
    assert (
        sum(1 for n, p in zip(minutes["negative"], minutes["positive"], strict=True) if n + p) == 20
    )
    assert sum(minutes["negative"]) == 10 and sum(minutes["positive"]) == 10

    latest = queries.latest_reviews(ch, XSS, NOW, limit=4)
    assert [r["review_id"] for r in latest] == [f"{XSS}-{i}" for i in range(33, 37)]
    assert latest[0]["text"] == XSS  # stored as given, shown as text by the page
    assert latest[0]["sentiment"] == "positive" and 0 < latest[0]["confidence"] <= 1


def test_alerts_carry_figures_and_sample_reviews(ch: ClickHouse) -> None:
    rows = shop()
    ReviewStore(ch).write_reviews(rows)
    example = json.loads((PROJECT_ROOT / "schemas/examples/quality_alert.v1.json").read_text())
    samples = [*[r.review_id for r in rows if r.product_id == "A"][:2], "gone"]
    event = {
        **example,
        "subject": "A",
        "sample_review_ids": samples,
        "raised_at": (NOW - MINUTE).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    old = {**event, "alert_id": "old", "raised_at": "2020-01-01T00:00:00Z"}
    for version, e in enumerate((event, old)):
        row = alert_row(e, status=PUBLISHED, last_seen_at=NOW, version=version + 1)
        ch.insert(ALERTS_TABLE, ALERT_COLUMNS, [[row[c] for c in ALERT_COLUMNS]])

    [alert] = queries.recent_alerts(ch, NOW, limit=10, samples=3)  # the old one: too old
    assert alert["subject"] == "A" and alert["severity"] == "critical"
    assert alert["figures"]["window_reviews"] == example["figures"]["window_reviews"]
    assert [s["review_id"] for s in alert["samples"]] == samples[:2]
    assert alert["samples"][0]["text"] == COMPLAINT_TEXT.replace("，", ",")

    body = assemble.alerts(ch, NOW, limit=10, samples=1)
    assert len(body["alerts"][0]["samples"]) == 1
    assert body["alerts"][0]["raised_at"].endswith("Z")


def test_assembled_bodies(ch: ClickHouse) -> None:
    ReviewStore(ch).write_reviews(shop())
    body = assemble.reputation(ch, NOW, limit=2, min_reviews=5, categories=5)
    assert set(body["periods"]) == {"1h", "24h"}
    products = body["periods"]["1h"]["products"]
    assert [p["product_id"] for p in products] == ["A", "B"]
    assert products[0]["complaints"][0]["keyword"] in {"漏水", "质量差", "退货"}
    assert len(body["periods"]["24h"]["products"][0]["sparkline"]) == 24

    page = assemble.product(ch, XSS, NOW, hours=6, reviews=3)
    assert page is not None and page["summary"]["reviews_1h"] == 6
    assert len(page["reviews"]) == 3 and page["complaints"] == []
    assert assemble.product(ch, "nobody", NOW, hours=6, reviews=3) is None

    health = assemble.model_health(ch, "no model card (test)", MonitorConfig(), NOW)
    titles = [s["title"] for s in health["sections"]]
    assert any("feedback" in t for t in titles) and any("Drift" in t for t in titles)
    feedback = health["sections"][0]["rows"]
    assert {(r["category"], r["rated"]) for r in feedback} == {("手机", 10)}
