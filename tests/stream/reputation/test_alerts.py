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
    alert_event,
    alert_row,
    describe,
    encode_event,
)
from stream.reputation.incidents import incident_id
from stream.reputation.rules import AlertKind, Finding, Severity, SubjectType

NOW = datetime(2026, 11, 27, 12, 34, 56, 789000, tzinfo=UTC)
END = datetime(2026, 11, 27, 12, 20, tzinfo=UTC)  # event time: the incident is 15 min old
ALERT_ID = incident_id(SubjectType.PRODUCT, "P-1", END - timedelta(minutes=1))


def spike() -> Finding:
    return Finding(
        AlertKind.NEGATIVE_SPIKE,
        Severity.CRITICAL,
        SubjectType.PRODUCT,
        "P-1",
        "热水器",
        {
            "window_minutes": 5,
            "window_reviews": 30,
            "window_hits": 24,
            "rate": 0.8,
            "normal_rate": 0.16,
            "evidence": 21.5,
            "threshold_evidence": 9.0,
        },
        end=END,
        window_minutes=5,
        top_complaints=(("漏水", 14), ("质量差", 9)),
    )


def test_alert_event_follows_the_schema_and_keeps_event_time():
    event = alert_event(spike(), ALERT_ID, ["r1", "r2"], NOW, timedelta(hours=24))
    schemas.validator("quality_alert", 1).validate(event)
    assert event["alert_id"] == ALERT_ID
    assert event["window_start"] == "2026-11-27T12:15:00Z"
    assert event["window_end"] == "2026-11-27T12:20:00Z"
    assert event["baseline_start"] == "2026-11-26T12:15:00Z"
    assert event["raised_at"] == "2026-11-27T12:34:56Z"
    assert event["top_complaints"] == [
        {"keyword": "漏水", "reviews": 14},
        {"keyword": "质量差", "reviews": 9},
    ]
    assert event["message"] == (
        "product P-1 (热水器): 80% negative in the 5 min to 2026-11-27T12:20:00Z (24 of 30) "
        "vs a usual 16% (its history and category); evidence 21.5 (needs 9)"
    )
    assert set(event) == set(schemas.load_schema("quality_alert", 1)["required"])


def test_shipped_example_is_valid():
    for example in schemas.examples("quality_alert", 1).values():
        schemas.validator("quality_alert", 1).validate(example)


def test_every_kind_and_subject_type_is_in_the_schema():
    properties = schemas.load_schema("quality_alert", 1)["properties"]
    assert {k.value for k in AlertKind} <= set(properties["kind"]["enum"])
    assert [t.value for t in SubjectType] == properties["subject_type"]["enum"]
    assert [s.value for s in Severity] == properties["severity"]["enum"]


def test_bad_figures_are_refused():
    bad = Finding(
        AlertKind.NEGATIVE_SPIKE,
        Severity.WARNING,
        SubjectType.PRODUCT,
        "P",
        "c",
        {**spike().figures, "note": "high"},  # type: ignore[dict-item]
        end=END,
    )
    with pytest.raises(jsonschema.ValidationError):
        alert_event(bad, ALERT_ID, [], NOW, timedelta(hours=24))


def test_messages_for_each_kind():
    surge = Finding(
        AlertKind.COMPLAINT_SURGE,
        Severity.WARNING,
        SubjectType.PRODUCT,
        "P-1",
        "热水器",
        {**spike().figures, "window_hits": 12, "rate": 0.4},
        end=END,
        window_minutes=15,
        top_complaints=(("漏水", 10),),
    )
    assert "12 of 30 reviews in the 15 min" in describe(surge) and "漏水" in describe(surge)
    drop = Finding(
        AlertKind.CATEGORY_DROP,
        Severity.WARNING,
        SubjectType.CATEGORY,
        "手机",
        "手机",
        {**spike().figures, "window_reviews": 400, "window_hits": 120, "rate": 0.3},
        end=END,
        window_minutes=15,
    )
    assert describe(drop).startswith("category 手机: 30% negative in the 15 min")
    assert "(its history)" in describe(drop)
    lag = Finding(
        AlertKind.PIPELINE_LAG,
        Severity.CRITICAL,
        SubjectType.PIPELINE,
        "review.created",
        "",
        {"lag_seconds": 3900.0, "unprocessed_messages": 52000, "threshold_seconds": 600.0},
        end=END,
    )
    assert describe(lag).startswith(
        "pipeline review.created: the oldest unprocessed review has waited 65 min "
        "(threshold 10 min, 52000 messages behind)"
    )
    event = alert_event(lag, "f" * 32, [], NOW, timedelta(hours=24))
    assert (event["subject_type"], event["category"]) == ("pipeline", "")


def test_alert_row_keeps_the_exact_event():
    event = alert_event(spike(), ALERT_ID, ["r1"], NOW, timedelta(hours=24))
    row = alert_row(event, status=PENDING, last_seen_at=END, version=7)
    assert tuple(row) == ALERT_COLUMNS
    assert row["payload"].encode() == encode_event(event)
    assert row["last_seen_at"] == END
    assert row["window_start"] == END - timedelta(minutes=5)


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
