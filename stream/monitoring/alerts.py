"""The ``review.alerts`` event of a model-health finding, and the finding as the alert
engine's incident tracker takes it. Pure.

The event follows ``schemas/quality_alert.v1.json`` like the reputation alerts (kinds
``model_drift`` and ``feedback_drop``, subject = the category), so it goes through the same
alert engine, outbox table and topic. :func:`model_health_event` validates it;
:func:`incident_finding` is the finding in the tracker's terms (``stream.reputation.rules
.Finding``), whose kind gives it an incident lane of its own (``stream.reputation.incidents``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import schemas
from stream.events import format_timestamp
from stream.monitoring.rules import ModelHealthFinding
from stream.reputation.incidents import incident_id
from stream.reputation.rules import AlertKind, Finding, Severity, SubjectType

SCHEMA_EVENT = "quality_alert"
SCHEMA_VERSION = 1


def onset(finding: ModelHealthFinding) -> datetime:
    """The event-time minute the finding was evaluated at: the window's last minute."""
    return finding.window.end - timedelta(minutes=1)


def incident_finding(finding: ModelHealthFinding) -> Finding:
    """The finding as the incident tracker takes it: same kind, severity, subject, figures
    and window."""
    return Finding(
        kind=AlertKind(finding.kind),
        severity=Severity(finding.severity),
        subject_type=SubjectType(finding.subject_type),
        subject=finding.subject,
        category=finding.category,
        figures=dict(finding.figures),
        end=finding.window.end,
        window_minutes=finding.window.minutes,
    )


def health_alert_id(finding: ModelHealthFinding) -> str:
    """Deterministic id of the incident the finding opens when it is new: the alert engine's
    (``incident_id`` of kind, subject and the window's last minute)."""
    return incident_id(
        SubjectType(finding.subject_type), finding.subject, onset(finding), AlertKind(finding.kind)
    )


def model_health_event(
    finding: ModelHealthFinding,
    raised_at: datetime,
    sample_review_ids: Sequence[str] | None = None,
    *,
    alert_id: str | None = None,
) -> dict[str, Any]:
    """The validated ``review.alerts`` v1 event for a new model-health incident. Samples
    default to the finding's own (see ``stream.monitoring.queries.sample_review_ids``);
    ``alert_id`` to :func:`health_alert_id` (the engine passes its tracker's)."""
    samples = finding.sample_review_ids if sample_review_ids is None else sample_review_ids
    event = {
        "schema_version": SCHEMA_VERSION,
        "alert_id": alert_id or health_alert_id(finding),
        "kind": finding.kind,
        "severity": finding.severity,
        "subject_type": finding.subject_type,
        "subject": finding.subject,
        "category": finding.category,
        "window_start": format_timestamp(finding.window.start),
        "window_end": format_timestamp(finding.window.end),
        "baseline_start": format_timestamp(finding.window.baseline_start),
        "figures": dict(finding.figures),
        "top_complaints": [],
        "sample_review_ids": list(samples),
        "message": finding.message,
        "raised_at": format_timestamp(raised_at),
    }
    schemas.validator(SCHEMA_EVENT, SCHEMA_VERSION).validate(event)
    return event
