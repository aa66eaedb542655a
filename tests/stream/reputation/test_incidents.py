"""The incident lifecycle in event time (pure)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from stream.reputation.incidents import IncidentTracker, OpenIncident, incident_id, incident_key
from stream.reputation.rules import AlertKind, Finding, Severity, SubjectType

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
COOLDOWN = timedelta(minutes=60)
MINUTE = timedelta(minutes=1)


def finding(
    kind: AlertKind = AlertKind.NEGATIVE_SPIKE,
    subject: str = "p1",
    severity: Severity = Severity.WARNING,
) -> Finding:
    subject_type = SubjectType.CATEGORY if kind is AlertKind.CATEGORY_DROP else SubjectType.PRODUCT
    return Finding(kind, severity, subject_type, subject, "手机", {"evidence": 10.0}, end=T0)


def test_incident_id_depends_on_subject_and_onset_minute_only() -> None:
    a = incident_id(SubjectType.PRODUCT, "p1", T0)
    assert len(a) == 32
    assert a == incident_id(SubjectType.PRODUCT, "p1", T0 + timedelta(seconds=59))
    assert a != incident_id(SubjectType.PRODUCT, "p1", T0 + MINUTE)
    assert a != incident_id(SubjectType.CATEGORY, "p1", T0)
    assert a != incident_id(SubjectType.PRODUCT, "p2", T0)


def test_one_alert_per_subject_and_step_critical_first() -> None:
    tracker = IncidentTracker(COOLDOWN)
    new = tracker.step(
        T0,
        [
            finding(AlertKind.COMPLAINT_SURGE, severity=Severity.CRITICAL),
            finding(AlertKind.NEGATIVE_SPIKE),
            finding(AlertKind.NEGATIVE_SPIKE, subject="p2"),
        ],
        raised_at=T0,
    )
    assert [(n.finding.subject, n.finding.kind) for n in new] == [
        ("p1", AlertKind.COMPLAINT_SURGE),
        ("p2", AlertKind.NEGATIVE_SPIKE),
    ]
    assert new[0].alert_id == incident_id(SubjectType.PRODUCT, "p1", T0)


def test_an_incident_continues_while_seen_and_ends_after_the_quiet_cooldown() -> None:
    tracker = IncidentTracker(COOLDOWN)
    [first] = tracker.step(T0, [finding()], raised_at=T0)
    # Seen every minute for two hours: still the one incident, whichever rule fires.
    for minute in range(1, 120):
        kind = AlertKind.COMPLAINT_SURGE if minute % 2 else AlertKind.NEGATIVE_SPIKE
        assert tracker.step(T0 + minute * MINUTE, [finding(kind)], raised_at=T0) == []
    assert tracker.extended()[first.alert_id] == T0 + 119 * MINUTE
    # Quiet for exactly the cooldown: still the same incident.
    assert tracker.step(T0 + 179 * MINUTE, [finding()], raised_at=T0) == []
    # Quiet for longer than the cooldown: a new incident with a new id.
    later = T0 + (179 + 61) * MINUTE
    [second] = tracker.step(later, [finding()], raised_at=T0)
    assert second.alert_id == incident_id(SubjectType.PRODUCT, "p1", later)


def test_the_cooldown_is_event_time_not_wall_time() -> None:
    # An incident read back after the worker was down for three hours of wall time, with
    # the data resuming one minute of event time after the incident was last seen.
    seen = T0 - 3 * 60 * MINUTE
    stored = OpenIncident(
        "a1", AlertKind.NEGATIVE_SPIKE, SubjectType.PRODUCT, "p1", seen, seen + 5 * MINUTE
    )
    tracker = IncidentTracker.of(COOLDOWN, [stored])
    assert tracker.step(seen + 6 * MINUTE, [finding()], raised_at=T0) == []
    assert tracker.extended() == {"a1": seen + 6 * MINUTE}


def test_the_newest_stored_incident_per_subject_wins() -> None:
    old = OpenIncident("old", AlertKind.NEGATIVE_SPIKE, SubjectType.PRODUCT, "p1", T0, T0)
    new = OpenIncident(
        "new", AlertKind.NEGATIVE_SPIKE, SubjectType.PRODUCT, "p1", T0, T0 + 30 * MINUTE
    )
    tracker = IncidentTracker.of(COOLDOWN, [new, old])
    assert tracker.open[("reputation", "product", "p1")].alert_id == "new"


def test_a_skipped_gap_is_not_quiet_time() -> None:
    stored = OpenIncident("a1", AlertKind.NEGATIVE_SPIKE, SubjectType.PRODUCT, "p1", T0, T0)
    tracker = IncidentTracker.of(COOLDOWN, [stored])
    resume = T0 + 26 * 60 * MINUTE  # a day and more not evaluated
    tracker.bridge(T0 + 10 * MINUTE, resume)
    assert tracker.step(resume + MINUTE, [finding()], raised_at=T0) == []
    # An incident already over before the gap is not revived by it.
    over = OpenIncident("a2", AlertKind.NEGATIVE_SPIKE, SubjectType.PRODUCT, "p2", T0, T0)
    tracker = IncidentTracker.of(COOLDOWN, [over])
    tracker.bridge(T0 + 2 * 60 * MINUTE, resume)
    assert len(tracker.step(resume + MINUTE, [finding(subject="p2")], raised_at=T0)) == 1


def test_re_evaluating_earlier_minutes_keeps_the_latest_sighting() -> None:
    tracker = IncidentTracker(COOLDOWN)
    [new] = tracker.step(T0 + 10 * MINUTE, [finding()], raised_at=T0)
    assert tracker.step(T0 + 5 * MINUTE, [finding()], raised_at=T0) == []
    assert tracker.open[("reputation", "product", "p1")].last_seen_at == T0 + 10 * MINUTE
    assert new.alert_id == incident_id(SubjectType.PRODUCT, "p1", T0 + 10 * MINUTE)


def health(kind: AlertKind, subject: str = "手机") -> Finding:
    return Finding(kind, Severity.WARNING, SubjectType.CATEGORY, subject, subject, {}, end=T0)


def test_model_health_kinds_have_lanes_of_their_own() -> None:
    """category_drop, model_drift and feedback_drop on one category are three incidents, each
    continued by its own kind only; reputation kinds still share one incident per subject."""
    tracker = IncidentTracker(COOLDOWN)
    kinds = (AlertKind.CATEGORY_DROP, AlertKind.MODEL_DRIFT, AlertKind.FEEDBACK_DROP)
    new = tracker.step(T0, [health(kind) for kind in kinds], raised_at=T0)
    assert [n.finding.kind for n in new] == list(kinds)
    assert len({n.alert_id for n in new}) == 3
    assert set(tracker.open) == {
        ("reputation", "category", "手机"),
        ("model_drift", "category", "手机"),
        ("feedback_drop", "category", "手机"),
    }
    # An open model_drift incident does not hold back feedback_drop on another category ...
    assert len(tracker.step(T0 + MINUTE, [health(AlertKind.FEEDBACK_DROP, "外卖")], T0)) == 1
    # ... and each lane goes on with its own kind.
    later = [health(kind) for kind in kinds]
    assert tracker.step(T0 + 5 * MINUTE, later, raised_at=T0) == []
    assert set(tracker.extended()) == {n.alert_id for n in new}


def test_incident_ids_of_reputation_kinds_are_unchanged_and_lanes_differ() -> None:
    # The reputation lane hashes subject and minute only, as before lanes existed (ids of
    # stored alerts stay valid).
    before = hashlib.md5("category|手机|2026-11-27T12:00Z".encode()).hexdigest()
    assert incident_id(SubjectType.CATEGORY, "手机", T0, AlertKind.CATEGORY_DROP) == before
    assert incident_id(SubjectType.CATEGORY, "手机", T0) == before
    ids = {
        incident_id(SubjectType.CATEGORY, "手机", T0, kind)
        for kind in (AlertKind.CATEGORY_DROP, AlertKind.MODEL_DRIFT, AlertKind.FEEDBACK_DROP)
    }
    assert len(ids) == 3
    stored = OpenIncident("a1", AlertKind.MODEL_DRIFT, SubjectType.CATEGORY, "手机", T0, T0)
    assert stored.key == incident_key(AlertKind.MODEL_DRIFT, SubjectType.CATEGORY, "手机")
    tracker = IncidentTracker.of(COOLDOWN, [stored])
    # A stored model_drift incident continues model_drift, not a category_drop.
    assert tracker.step(T0 + MINUTE, [health(AlertKind.MODEL_DRIFT)], raised_at=T0) == []
    assert len(tracker.step(T0 + MINUTE, [health(AlertKind.CATEGORY_DROP)], raised_at=T0)) == 1
