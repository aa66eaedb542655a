"""Unit tests for alert events, rows, windows and the report helpers (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

import schemas
from stream.reputation import reports, web
from stream.reputation.alerts import (
    ALERT_COLUMNS,
    PENDING,
    Window,
    alert_event,
    alert_id,
    alert_row,
    describe,
    encode_event,
)
from stream.reputation.rules import AlertKind, Finding, Severity, SubjectType

NOW = datetime(2026, 11, 27, 12, 34, 56, 789000, tzinfo=UTC)
WINDOW = Window.ending_at(NOW, timedelta(minutes=60), timedelta(hours=24))


def spike() -> Finding:
    return Finding(
        AlertKind.NEGATIVE_SPIKE,
        Severity.CRITICAL,
        SubjectType.PRODUCT,
        "P-1",
        "热水器",
        {
            "window_reviews": 30,
            "window_negative": 24,
            "negative_ratio": 0.8,
            "baseline_ratio": 0.2,
            "lift": 4.0,
        },
        top_complaints=(("漏水", 14), ("质量差", 9)),
    )


def test_window_is_minute_aligned_and_includes_the_current_minute():
    assert WINDOW.end == datetime(2026, 11, 27, 12, 35, tzinfo=UTC)
    assert WINDOW.start == datetime(2026, 11, 27, 11, 35, tzinfo=UTC)
    assert WINDOW.baseline_start == datetime(2026, 11, 26, 11, 35, tzinfo=UTC)
    assert WINDOW.minutes == 60


def test_alert_event_follows_the_schema():
    event = alert_event(spike(), WINDOW, ["r1", "r2"], raised_at=NOW)
    schemas.validator("quality_alert", 1).validate(event)
    assert event["window_start"] == "2026-11-27T11:35:00Z"
    assert event["raised_at"] == "2026-11-27T12:34:56Z"
    assert event["top_complaints"] == [
        {"keyword": "漏水", "reviews": 14},
        {"keyword": "质量差", "reviews": 9},
    ]
    assert event["message"] == (
        "product P-1 (热水器): 80% negative in the last 60 min (24 of 30), 4.0x its baseline of 20%"
    )
    assert set(event) == set(schemas.load_schema("quality_alert", 1)["required"])


def test_shipped_example_is_valid():
    for example in schemas.examples("quality_alert", 1).values():
        schemas.validator("quality_alert", 1).validate(example)


def test_bad_figures_are_refused():
    figures = {**spike().figures, "note": "high"}
    bad = Finding(
        AlertKind.NEGATIVE_SPIKE, Severity.WARNING, SubjectType.PRODUCT, "P", "c", figures
    )
    with pytest.raises(jsonschema.ValidationError):
        alert_event(bad, WINDOW, [], raised_at=NOW)


def test_alert_id_is_deterministic_per_incident():
    a = alert_id(AlertKind.NEGATIVE_SPIKE, SubjectType.PRODUCT, "P-1", WINDOW.start)
    assert a == alert_id(AlertKind.NEGATIVE_SPIKE, SubjectType.PRODUCT, "P-1", WINDOW.start)
    assert len(a) == 32
    others = {
        alert_id(AlertKind.COMPLAINT_SURGE, SubjectType.PRODUCT, "P-1", WINDOW.start),
        alert_id(AlertKind.NEGATIVE_SPIKE, SubjectType.PRODUCT, "P-2", WINDOW.start),
        alert_id(AlertKind.NEGATIVE_SPIKE, SubjectType.CATEGORY, "P-1", WINDOW.start),
        alert_id(
            AlertKind.NEGATIVE_SPIKE,
            SubjectType.PRODUCT,
            "P-1",
            WINDOW.start + timedelta(minutes=1),
        ),
    }
    assert a not in others and len(others) == 4


def test_messages_for_each_kind():
    surge = Finding(
        AlertKind.COMPLAINT_SURGE,
        Severity.WARNING,
        SubjectType.PRODUCT,
        "P-1",
        "热水器",
        {"complaint_reviews": 12, "window_reviews": 30, "lift": 2.5},
        top_complaints=(("漏水", 10),),
    )
    assert "12 of 30 reviews" in describe(surge, WINDOW) and "漏水" in describe(surge, WINDOW)
    drop = Finding(
        AlertKind.CATEGORY_DROP,
        Severity.WARNING,
        SubjectType.CATEGORY,
        "手机",
        "手机",
        {"drop": 0.35, "window_net_score": 0.05, "baseline_net_score": 0.4, "window_reviews": 80},
    )
    assert describe(drop, WINDOW) == (
        "category 手机: net score fell by 0.35 to 0.05 in the last 60 min "
        "(baseline 0.40, 80 reviews)"
    )


def test_alert_row_keeps_the_exact_event():
    event = alert_event(spike(), WINDOW, ["r1"], raised_at=NOW)
    row = alert_row(event, status=PENDING, last_seen_at=NOW, version=7)
    assert tuple(row) == ALERT_COLUMNS
    assert row["payload"].encode() == encode_event(event)
    assert row["last_seen_at"] == NOW.replace(microsecond=0)
    assert row["window_start"] == WINDOW.start


def test_web_parameters():
    assert web.products_args({}) == {"period": "24h", "limit": 10, "min_reviews": 20}
    assert web.products_args({"period": "1h", "limit": "5"})["limit"] == 5
    for bad in ({"period": "7d"}, {"limit": "ten"}, {"limit": "0"}, {"min_reviews": "-1"}):
        with pytest.raises(web.BadParameter):
            web.products_args(bad)
    assert web.complaints_args({"hours": "6"}) == {"hours": 6, "limit": 10}
    with pytest.raises(web.BadParameter):
        web.alerts_args({"limit": "100000"})


def test_format_table():
    rows = [
        {"product_id": "P1", "negative_ratio": 0.456, "net_score_trend": -0.2, "change": 3},
        {"product_id": "热水器X", "negative_ratio": 0.1, "net_score_trend": None, "change": -1},
    ]
    text = reports.format_table(rows, ("product_id", "negative_ratio", "net_score_trend", "change"))
    lines = text.splitlines()
    assert lines[0].split() == ["product_id", "negative_ratio", "net_score_trend", "change"]
    assert lines[2].split() == ["P1", "46%", "-0.20", "+3"]
    assert lines[3].split() == ["热水器X", "10%", "n/a", "-1"]
    assert reports.format_table([], ("a",)) == "(none)"
    assert reports.jsonable([{"t": NOW, "x": 0.123456, "n": None}]) == [
        {"t": "2026-11-27T12:34:56Z", "x": 0.1235, "n": None}
    ]
