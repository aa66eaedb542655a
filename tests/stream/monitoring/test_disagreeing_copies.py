"""Every reader of ``feedback_minute``, ``traffic_minute`` and the sentiment counts per
minute counts a review once when its stored copies disagree, on both backends: the model
health reads, the ``model_feedback`` view, the live page's product reads and the Grafana
panels. The copies are what at-least-once delivery leaves: the same reviews re-read by
another model version, and re-read by the same version with int8 scores that moved (other
sentiment, other confidence bin), inserted past every check (two writers across a
rebalance), as ReplacingMergeTree keeps them until it merges. Expected figures come from
the input: each review under the most negative sentiment and the lowest bin of its copies."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from model.labels import SENTIMENTS, label_from_rating
from model.profile import CONFIDENCE_EDGES, TEXT_LENGTH_EDGES, bin_index
from stream.dashboard import queries as page
from stream.monitoring.queries import read_confusion, read_feedback, read_traffic
from stream.monitoring.rules import MonitorWindow
from stream.rows import ReviewRow
from stream.sink.backend import ClickHouse
from stream.sink.store import REVIEW_COLUMNS, review_values
from tests.stream.monitoring.traffic import review_row
from tests.stream.reputation.test_dashboard import dashboard, expand_macros

pytestmark = pytest.mark.clickhouse

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
WINDOW = MonitorWindow.ending_at(NOW, 60, 2)
WINDOW_SPAN = (WINDOW.start, WINDOW.end)
EVERYTHING = (NOW - timedelta(hours=12), NOW + timedelta(hours=1))
ONE_BUCKET_MS = 4_000_000_000_000  # a Grafana $__interval longer than the epoch: one point
TURN = {"negative": "positive", "neutral": "negative", "positive": "neutral"}


def originals() -> list[ReviewRow]:
    """90 reviews over the window and 30 in the baseline, two categories, mostly rated."""
    rows = []
    for i in range(120):
        before = WINDOW.start - timedelta(minutes=5 + i % 50)
        at = WINDOW.start + timedelta(minutes=i % 60) if i < 90 else before
        rows.append(
            review_row(
                f"r-{i:03d}",
                ("手机", "外卖")[i % 2],
                SENTIMENTS[i % 3],
                at + timedelta(seconds=7),
                confidence=(0.42, 0.58, 0.77, 0.93)[i % 4],
                rating=(None, 1, 2, 3, 4, 5)[i % 6],
                text="质量很好物流也快满意包装"[: 3 + i % 9] * (1 + i % 5),
                tokens=10 + i % 7,
            )
        )
    return rows


def copies_of(rows: list[ReviewRow]) -> list[ReviewRow]:
    """Half re-read by v2 (every sentiment moved), a third re-read by v1 with moved scores."""
    later = timedelta(minutes=5)
    again = [
        replace(
            r,
            sentiment=TURN[r.sentiment],
            model_version="v2",
            confidence=0.51,
            processed_at=r.processed_at + later,
        )
        for r in rows[::2]
    ]
    moved = [
        replace(
            r,
            sentiment=TURN[TURN[r.sentiment]],
            confidence=0.66,
            processed_at=r.processed_at + later,
        )
        for r in rows[::3]
    ]
    return again + moved


def insert(ch: ClickHouse, rows: Sequence[ReviewRow]) -> None:
    ch.insert("reviews", REVIEW_COLUMNS, [review_values(r) for r in rows])


def by_review(rows: list[ReviewRow], version: str | None = None) -> dict[str, list[ReviewRow]]:
    copies: dict[str, list[ReviewRow]] = defaultdict(list)
    for row in rows:
        if version is None or row.model_version == version:
            copies[row.review_id].append(row)
    return copies


def resolved(copies: list[ReviewRow]) -> str:
    """The sentiment a review counts under: the most negative any copy has."""
    return min((r.sentiment for r in copies), key=SENTIMENTS.index)


def in_span(row: ReviewRow, start: datetime, end: datetime) -> bool:
    return start <= row.created_at.replace(second=0) < end


def expected_traffic(rows: list[ReviewRow], version: str | None) -> dict[str, tuple]:
    """Per category: reviews, per-sentiment counts, confidence and length histograms."""
    found: dict[str, list] = {}
    for copies in by_review(rows, version).values():
        first = copies[0]
        if not in_span(first, WINDOW.start, WINDOW.end):
            continue
        counts = found.setdefault(
            first.category,
            [0, [0] * 3, [0] * len(CONFIDENCE_EDGES), [0] * len(TEXT_LENGTH_EDGES)],
        )
        counts[0] += 1
        counts[1][SENTIMENTS.index(resolved(copies))] += 1
        counts[2][min(bin_index(CONFIDENCE_EDGES, r.confidence) for r in copies)] += 1
        counts[3][min(bin_index(TEXT_LENGTH_EDGES, len(r.text)) for r in copies)] += 1
    return {category: (c[0], c[1], c[2], c[3]) for category, c in found.items()}


def stored_traffic(ch: ClickHouse, version: str | None) -> dict[str, tuple]:
    found = {}
    for category, window in read_traffic(ch, WINDOW.start, WINDOW.end, version).items():
        profile = window.profile
        n = profile.reviews
        found[category] = (
            n,
            [round(profile.label_shares[label] * n) for label in SENTIMENTS],
            [round(share * n) for share in profile.confidence.shares],
            [round(share * n) for share in profile.text_length.shares],
        )
    return found


def expected_confusion(
    rows: list[ReviewRow], key: str, start: datetime, end: datetime
) -> dict[str, dict[tuple[str, str], int]]:
    """Per ``key`` (category or model_version): rated reviews by (predicted, rated label);
    per model version a review counts once under each version that classified it."""
    found: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    versions = sorted({r.model_version for r in rows}) if key == "model_version" else [None]
    for version in versions:
        for copies in by_review(rows, version).values():
            first = copies[0]
            if first.rating is None or not in_span(first, start, end):
                continue
            name = getattr(first, key)
            found[name][(resolved(copies), label_from_rating(first.rating))] += 1
    return {name: dict(cells) for name, cells in found.items()}


@pytest.fixture
def stored(ch: ClickHouse) -> list[ReviewRow]:
    rows = originals()
    insert(ch, rows)
    copies = copies_of(rows)
    insert(ch, copies)
    return rows + copies


def test_traffic_profiles_count_each_review_once(ch: ClickHouse, stored: list[ReviewRow]):
    for version in (None, "v1", "v2"):
        assert stored_traffic(ch, version) == expected_traffic(stored, version), version
    assert sum(v[0] for v in stored_traffic(ch, None).values()) == 90


def test_clean_traffic_reads_the_same_without_the_resolution(ch: ClickHouse) -> None:
    """No copies: the cheap per-cell read alone, exact."""
    rows = originals()
    insert(ch, rows)
    assert stored_traffic(ch, None) == expected_traffic(rows, None)


def test_feedback_counts_each_review_once(ch: ClickHouse, stored: list[ReviewRow]) -> None:
    for key in ("category", "model_version"):
        feedback = read_feedback(ch, WINDOW, key)
        window = {name: dict(f.confusion) for name, f in feedback.window.items()}
        baseline = {name: dict(f.confusion) for name, f in feedback.baseline.items()}
        assert window == expected_confusion(stored, key, WINDOW.start, WINDOW.end), key
        assert baseline == expected_confusion(stored, key, WINDOW.baseline_start, WINDOW.start)
    confusion = read_confusion(ch, WINDOW.start, WINDOW.end)
    want: dict[tuple[str, str], dict] = {}
    for version in ("v1", "v2"):
        mine = [r for r in stored if r.model_version == version]
        for category, cells in expected_confusion(mine, "category", *WINDOW_SPAN).items():
            want[(version, category)] = cells
    assert {key: dict(f.confusion) for key, f in confusion.items()} == want


def test_the_model_feedback_view_counts_each_review_once(ch, stored: list[ReviewRow]) -> None:
    want = {}
    for version in ("v1", "v2"):
        mine = [r for r in stored if r.model_version == version]
        for category, cells in expected_confusion(mine, "category", *EVERYTHING).items():
            rated = sum(cells.values())
            agreeing = sum(n for (p, r), n in cells.items() if p == r)
            want[(category, version)] = (rated, agreeing)
    got = {
        (category, version): (int(rated), int(agreeing))
        for category, version, rated, agreeing in ch.query(
            "SELECT category, model_version, rated_24h, agreeing_24h FROM model_feedback"
        )
    }
    assert got == want


def test_the_live_page_counts_each_review_once(ch: ClickHouse, stored: list[ReviewRow]) -> None:
    product = stored[0].product_id
    span = page.Span(WINDOW.start, WINDOW.end)
    minutes = page.product_minutes(ch, product, span)
    want = {label: 0 for label in SENTIMENTS}
    for copies in by_review([r for r in stored if r.product_id == product]).values():
        if in_span(copies[0], WINDOW.start, WINDOW.end):
            want[resolved(copies)] += 1
    assert {label: sum(minutes[label]) for label in SENTIMENTS} == want
    summary = page.product_summary(ch, product, NOW)
    assert summary is not None
    reviews = by_review([r for r in stored if r.product_id == product]).values()
    negative = sum(resolved(copies) == "negative" for copies in reviews)
    rated = [copies for copies in reviews if copies[0].rating is not None]
    agreeing = sum(resolved(c) == label_from_rating(c[0].rating) for c in rated)
    assert summary["reviews_24h"] == len(reviews)
    assert summary["negative_ratio_24h"] == pytest.approx(negative / len(reviews))
    assert (summary["rated_24h"], summary["agreement_24h"]) == (
        len(rated),
        pytest.approx(agreeing / len(rated)),
    )


def test_the_grafana_panels_count_each_review_once(ch, stored: list[ReviewRow]) -> None:
    queries = {
        panel["title"]: target["rawSql"]
        for panel in dashboard()["panels"]
        for target in panel["targets"]
        if "rawSql" in target
    }

    def run(title: str) -> list[tuple]:  # one point per series
        end = WINDOW.end - timedelta(seconds=1)
        return ch.query(expand_macros(queries[title], WINDOW.start, end, ONE_BUCKET_MS))

    in_window = [r for r in stored if in_span(r, WINDOW.start, WINDOW.end)]
    reviews = by_review(in_window)
    want_sentiment = {label: 0 for label in SENTIMENTS}
    for copies in reviews.values():
        want_sentiment[resolved(copies)] += 1
    got = defaultdict(int)
    for _, sentiment, n in run("Sentiment over time"):
        got[sentiment] += int(n)
    assert dict(got) == want_sentiment
    assert sum(want_sentiment.values()) == 90
    neutral = {row[1]: row[2] for row in run("Neutral share by category")}
    traffic = expected_traffic(stored, None)
    assert neutral == {c: pytest.approx(t[1][1] / t[0]) for c, t in traffic.items()}
    confusion = run("Prediction x rating (selected range)")
    want = {
        version: expected_confusion(
            [r for r in in_window if r.model_version == version], "category", *WINDOW_SPAN
        )
        for version in ("v1", "v2")
    }
    assert sum(sum(row[2:]) for row in confusion) == sum(
        sum(cells.values()) for per in want.values() for cells in per.values()
    )
    agreement = {row[1]: row[2] for row in run("Rating agreement by model version")}
    for version, per in want.items():
        cells = defaultdict(int)
        for category_cells in per.values():
            for key, n in category_cells.items():
                cells[key] += n
        agreeing = sum(n for (p, r), n in cells.items() if p == r)
        assert agreement[version] == pytest.approx(agreeing / sum(cells.values()))
