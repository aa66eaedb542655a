"""Minute grids, step plans, the hourly baseline cache and lexicon learning (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stream.reputation.baseline import BaselineCache
from stream.reputation.grid import (
    MAX_CATCHUP,
    MAX_STEPS,
    MINUTE,
    REEVALUATE,
    MinuteGrid,
    ProductHistory,
    ProductMinutes,
    floor_hour,
    plan_steps,
)
from stream.reputation.lexicon import (
    KeywordStat,
    LearnedWord,
    Lexicon,
    keyword_lift,
    learn_lexicon,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_first_run_steps_through_one_longest_window() -> None:
    plan = plan_steps(None, T0, 60)
    assert plan.first == T0 - 59 * MINUTE and plan.last == T0
    assert len(plan.buckets) == 60 and plan.skipped is None
    assert plan_steps(None, None, 60).buckets == ()


def test_later_runs_resume_a_little_before_the_last_minute_evaluated() -> None:
    plan = plan_steps(T0, T0 + 2 * MINUTE, 60)
    assert plan.first == T0 - REEVALUATE and plan.last == T0 + 2 * MINUTE
    # Nothing new: the recent minutes are looked at again (late data), nothing skipped.
    assert plan_steps(T0, T0, 60).last == T0


def test_a_backlog_is_stepped_through_in_slices() -> None:
    plan = plan_steps(T0, T0 + 5 * 60 * MINUTE, 60)
    assert len(plan.buckets) == MAX_STEPS
    assert plan.first == T0 - REEVALUATE and plan.skipped is None
    assert plan.buckets == tuple(plan.first + i * MINUTE for i in range(MAX_STEPS))


def test_a_gap_longer_than_the_catch_up_is_skipped_and_reported() -> None:
    watermark = T0 + MAX_CATCHUP + 3 * 60 * MINUTE
    plan = plan_steps(T0, watermark, 60)
    assert plan.skipped == (T0, watermark - MAX_CATCHUP)
    assert plan.first == watermark - MAX_CATCHUP


def grid() -> MinuteGrid:
    start = T0 - 10 * MINUTE
    stamp = int(start.timestamp())
    minutes = [stamp + 60 * i for i in range(10)]
    series = [
        # p1: 6 reviews a minute, 1 negative; its last minute 3 more negative, 2 complaints.
        ProductMinutes("p1", "手机", minutes, [6] * 10, [1] * 9 + [4], [minutes[-1]], [2]),
        ProductMinutes("p2", "衣服", [minutes[-2]], [4], [4], [minutes[-2]], [4]),
        ProductMinutes("p4", "衣服", [stamp - 60, stamp + 600], [5, 5], [5, 5]),  # off-grid
    ]
    history = {
        "p1": ProductHistory("手机", 1000, 150, 30),
        "p3": ProductHistory("书籍", 50, 5, 1),
    }
    return MinuteGrid(start, 10, series, history)


def test_grid_windows_and_baselines() -> None:
    g = grid()
    assert g.products == ["p1", "p2", "p3", "p4"]
    assert g.categories == ["手机", "衣服", "书籍", "衣服"]
    step = g.step(T0 - MINUTE, (2, 5, 10), end=T0)
    assert step.end == T0
    # p1: 6 reviews a minute, 1 negative; its last minute has 3 more negative, 2 complaints.
    assert step.negative.total[0].tolist() == [12, 30, 60]
    assert step.negative.hits[0].tolist() == [5, 8, 13]
    assert step.complaint.hits[0].tolist() == [2, 2, 2]
    # Baselines: history plus the grid minutes before each window.
    assert step.negative.base_total[0].tolist() == [1048, 1030, 1000]
    assert step.negative.base_hits[0].tolist() == [158, 155, 150]
    assert step.complaint.base_hits[0].tolist() == [30, 30, 30]
    # p2 only in the grid, p3 only in the history.
    assert step.negative.hits[1].tolist() == [4, 4, 4]
    assert step.negative.total[2].tolist() == [0, 0, 0]
    assert step.negative.base_total[2].tolist() == [50, 50, 50]
    assert step.negative.total[3].tolist() == [0, 0, 0]  # its minutes lie outside the grid


def test_an_earlier_step_cuts_earlier_windows() -> None:
    step = grid().step(T0 - 6 * MINUTE, (2, 5, 10), end=T0 - 5 * MINUTE)
    assert step.negative.total[0].tolist() == [12, 30, 30]  # the grid starts 5 minutes before
    assert step.negative.base_total[0].tolist() == [1018, 1000, 1000]
    with pytest.raises(ValueError):
        grid().step(T0, (2,), end=T0)


def test_the_baseline_cache_reads_each_settled_hour_once() -> None:
    calls: list[tuple[str, datetime, datetime]] = []

    def hours(start: datetime, end: datetime) -> list[datetime]:
        found, hour = [], start
        while hour < end:
            found.append(hour)
            hour += timedelta(hours=1)
        return found

    def counts(start: datetime, end: datetime) -> dict:
        calls.append(("counts", start, end))
        return {h: {"p1": ProductHistory("手机", 10, 2)} for h in hours(start, end)}

    def complaints(start: datetime, end: datetime, lexicon: Lexicon) -> dict:
        calls.append(("complaints", start, end))
        return {h: {"p1": 1 + lexicon.size} for h in hours(start, end)}

    cache = BaselineCache(counts, complaints, keep_hours=24)
    watermark = floor_hour(T0) + 30 * MINUTE
    end = floor_hour(T0)
    start = end - timedelta(hours=24)
    lexicon = Lexicon()
    assert cache.history(start, end, watermark, lexicon) == {
        "p1": ProductHistory("手机", 240, 48, 24)
    }
    assert calls == [("counts", start, end), ("complaints", start, end)]
    # An hour later: only the new hour and the one not settled before are read.
    hour = timedelta(hours=1)
    later = cache.history(start + hour, end + hour, watermark + hour, lexicon)
    assert later["p1"].total == 240
    assert calls[2:] == [("counts", end - hour, end + hour), ("complaints", end - hour, end + hour)]
    # A relearned lexicon that differs: complaint counts are read again, review counts not.
    learned = Lexicon({"手机": (LearnedWord("发烫", 30, 31, 9.0),)})
    again = cache.history(start + hour, end + hour, watermark + hour, learned)
    assert again["p1"].complaint == 48
    # Only the one unsettled hour of review counts is read again.
    assert calls[4:] == [("counts", end, end + hour), ("complaints", start + hour, end + hour)]


def test_keyword_lift_and_learning() -> None:
    # 手机: 1,000 reviews, 200 negative. "发烫" is in 60 negative and 10 other reviews.
    assert keyword_lift(60, 70, 200, 1000) == pytest.approx((61 / 201) / (11 / 801))
    stats = [
        KeywordStat("手机", "发烫", 60, 70),
        KeywordStat("手机", "屏幕", 40, 200),  # as common in negative as in other reviews
        KeywordStat("手机", "漏水", 50, 52),  # curated: excluded
        KeywordStat("手机", "卡顿", 5, 5),  # too rare
        KeywordStat("衣服", "起球", 30, 35),
        KeywordStat("书籍", "缺页", 30, 30),  # a category without totals: skipped
    ]
    lexicon = learn_lexicon(
        stats,
        {"手机": (200, 1000), "衣服": (100, 2000)},
        exclude=frozenset({"漏水"}),
        min_reviews=20,
        min_lift=4.0,
    )
    assert lexicon.words("手机") == ("发烫",)
    assert lexicon.words("衣服") == ("起球",)
    assert lexicon.words("书籍") == ()
    assert lexicon.pairs() == [("手机", "发烫"), ("衣服", "起球")]
    assert lexicon.size == 2


def test_words_negative_everywhere_are_sentiment_not_complaints() -> None:
    totals = {c: (100, 1000) for c in ("手机", "衣服", "书籍", "水果")}
    stats = [KeywordStat(c, "失望", 40, 42) for c in ("手机", "衣服", "书籍")]
    stats += [KeywordStat("书籍", "缺页", 30, 31), KeywordStat("水果", "烂了", 30, 30)]
    lexicon = learn_lexicon(stats, totals, exclude=frozenset(), min_reviews=20, min_lift=4.0)
    assert lexicon.pairs() == [("书籍", "缺页"), ("水果", "烂了")]
