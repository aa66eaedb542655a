"""The alerts table as the engine's state: newest version wins, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stream.reputation.alerts import PENDING, PUBLISHED, alert_event, alert_row
from stream.reputation.incidents import incident_id
from stream.reputation.queries import (
    fetch_alerts,
    fetch_open_alerts,
    fetch_progress,
    write_alert_rows,
    write_progress,
)
from stream.reputation.rules import AlertKind, Finding, Severity, SubjectType
from stream.sink.backend import ClickHouse

pytestmark = pytest.mark.clickhouse

NOW = datetime.now(UTC).replace(microsecond=0)


def event(subject: str, raised_at: datetime) -> dict:
    finding = Finding(
        AlertKind.NEGATIVE_SPIKE,
        Severity.WARNING,
        SubjectType.PRODUCT,
        subject,
        "手机",
        {
            "window_reviews": 30,
            "window_hits": 18,
            "rate": 0.6,
            "normal_rate": 0.2,
            "evidence": 12.0,
            "threshold_evidence": 7.0,
        },
        end=raised_at,
        window_minutes=15,
    )
    alert_id = incident_id(SubjectType.PRODUCT, subject, raised_at)
    return alert_event(finding, alert_id, ["r1"], raised_at, timedelta(hours=24))


def test_open_alerts_read_the_newest_version(ch: ClickHouse) -> None:
    cooldown = timedelta(minutes=60)
    old = event("OLD", NOW - timedelta(hours=5))
    live = event("LIVE", NOW - timedelta(hours=2))
    stuck = event("STUCK", NOW - timedelta(hours=3))
    rows = [
        # published long ago, not seen since: its superseded pending version must not
        # bring it back
        alert_row(old, status=PENDING, last_seen_at=NOW - timedelta(hours=5), version=1),
        alert_row(old, status=PUBLISHED, last_seen_at=NOW - timedelta(hours=4), version=2),
        # an incident still going on: extended 10 minutes ago
        alert_row(live, status=PENDING, last_seen_at=NOW - timedelta(hours=2), version=3),
        alert_row(live, status=PUBLISHED, last_seen_at=NOW - timedelta(hours=2), version=4),
        alert_row(live, status=PUBLISHED, last_seen_at=NOW - timedelta(minutes=10), version=5),
        # never published (broker down, then the engine stopped): still pending
        alert_row(stuck, status=PENDING, last_seen_at=NOW - timedelta(hours=3), version=6),
    ]
    write_alert_rows(ch, rows[:3])
    write_alert_rows(ch, rows[3:])

    found = {s.alert.subject: s for s in fetch_open_alerts(ch, NOW - cooldown)}
    assert set(found) == {"LIVE", "STUCK"}
    assert found["LIVE"].status == PUBLISHED
    assert found["LIVE"].alert.last_seen_at == NOW - timedelta(minutes=10)
    assert found["LIVE"].alert.alert_id == live["alert_id"]
    assert found["STUCK"].status == PENDING
    assert (
        found["STUCK"].payload
        == alert_row(stuck, status=PENDING, last_seen_at=NOW, version=0)["payload"]
    )
    old_now = {s.alert.alert_id: s for s in fetch_alerts(ch, [old["alert_id"]])}
    assert old_now[old["alert_id"]].status == PUBLISHED


def test_progress_is_the_newest_minute_any_evaluator_reached(ch: ClickHouse) -> None:
    assert fetch_progress(ch) is None
    write_progress(ch, NOW - timedelta(minutes=3, seconds=20), NOW, version=1)
    # A slower evaluator writing an older minute later does not move progress back.
    write_progress(ch, NOW - timedelta(minutes=10), NOW, version=2)
    assert fetch_progress(ch) == (NOW - timedelta(minutes=3, seconds=20)).replace(second=0)
