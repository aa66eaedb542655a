"""Quality alerts: building the ``review.alerts`` event and the ``alerts`` table row. Pure.

The event follows ``schemas/quality_alert.v1.json``; :func:`alert_event` validates it. The
table row keeps the exact event JSON in ``payload`` so a re-publish after a crash sends the
same bytes with the same ``alert_id`` (``incidents.incident_id``). The row's
``last_seen_at`` is event time: the last step at which the incident's condition held.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import schemas
from stream.events import format_timestamp
from stream.reputation.rules import AlertKind, Finding, SubjectType

SCHEMA_EVENT = "quality_alert"
SCHEMA_VERSION = 1

# Status of an alerts-table row: written "pending" before publishing, "published" after the
# broker acknowledged it (an outbox: a pending row left by a crash is published again).
PENDING = "pending"
PUBLISHED = "published"

ALERT_COLUMNS: tuple[str, ...] = (
    "alert_id",
    "kind",
    "severity",
    "subject_type",
    "subject",
    "category",
    "window_start",
    "window_end",
    "baseline_start",
    "raised_at",
    "last_seen_at",
    "status",
    "message",
    "sample_review_ids",
    "payload",
    "version",
)


def _percent(value: float | int) -> str:
    return f"{100 * float(value):.0f}%"


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def describe(finding: Finding) -> str:
    """One readable line about a finding."""
    f = finding.figures
    if finding.kind is AlertKind.PIPELINE_LAG:
        return (
            f"pipeline {finding.subject}: the oldest unprocessed review has waited "
            f"{_duration(float(f['lag_seconds']))} (threshold "
            f"{_duration(float(f['threshold_seconds']))}, {f['unprocessed_messages']} messages "
            "behind); alert windows follow event time and catch up"
        )
    where = f"{finding.subject_type.value} {finding.subject}"
    history = "its history"
    if finding.subject_type is SubjectType.PRODUCT:
        where += f" ({finding.category})"
        history = "its history and category"
    span = f"the {finding.window_minutes} min"
    if finding.end is not None:
        span += f" to {format_timestamp(finding.end)}"
    usual = f"a usual {_percent(f['normal_rate'])} ({history})"
    evidence = f"evidence {f['evidence']:.1f} (needs {f['threshold_evidence']:g})"
    if finding.kind is AlertKind.COMPLAINT_SURGE:
        words = ", ".join(word for word, _ in finding.top_complaints[:3]) or "complaints"
        return (
            f"{where}: {f['window_hits']} of {f['window_reviews']} reviews in {span} are "
            f"complaints ({words}), {_percent(f['rate'])} vs {usual}; {evidence}"
        )
    return (
        f"{where}: {_percent(f['rate'])} negative in {span} ({f['window_hits']} of "
        f"{f['window_reviews']}) vs {usual}; {evidence}"
    )


def alert_event(
    finding: Finding,
    alert_id: str,
    sample_review_ids: Sequence[str],
    raised_at: datetime,
    baseline: timedelta,
) -> dict[str, Any]:
    """The validated ``review.alerts`` v1 event for a new incident. Windows are event time:
    ``window_end`` is when the firing window ends (the detection moment), ``raised_at`` the
    wall clock; an incident replayed an hour late keeps its own times."""
    end = finding.end if finding.end is not None else raised_at
    start = end - timedelta(minutes=finding.window_minutes)
    event = {
        "schema_version": SCHEMA_VERSION,
        "alert_id": alert_id,
        "kind": finding.kind.value,
        "severity": finding.severity.value,
        "subject_type": finding.subject_type.value,
        "subject": finding.subject,
        "category": finding.category,
        "window_start": format_timestamp(start),
        "window_end": format_timestamp(end),
        "baseline_start": format_timestamp(start - baseline),
        "figures": dict(finding.figures),
        "top_complaints": [
            {"keyword": word, "reviews": int(count)} for word, count in finding.top_complaints
        ],
        "sample_review_ids": list(sample_review_ids),
        "message": describe(finding),
        "raised_at": format_timestamp(raised_at),
    }
    schemas.validator(SCHEMA_EVENT, SCHEMA_VERSION).validate(event)
    return event


def encode_event(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, sort_keys=True).encode("utf-8")


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def alert_row(
    event: dict[str, Any], *, status: str, last_seen_at: datetime, version: int
) -> dict[str, Any]:
    """One ``alerts`` row (ReplacingMergeTree by ``alert_id``, newest ``version`` wins)."""
    return {
        "alert_id": event["alert_id"],
        "kind": event["kind"],
        "severity": event["severity"],
        "subject_type": event["subject_type"],
        "subject": event["subject"],
        "category": event["category"],
        "window_start": parse_timestamp(event["window_start"]),
        "window_end": parse_timestamp(event["window_end"]),
        "baseline_start": parse_timestamp(event["baseline_start"]),
        "raised_at": parse_timestamp(event["raised_at"]),
        "last_seen_at": last_seen_at.astimezone(UTC).replace(microsecond=0),
        "status": status,
        "message": event["message"],
        "sample_review_ids": list(event["sample_review_ids"]),
        "payload": encode_event(event).decode("utf-8"),
        "version": version,
    }
