"""The ``review.alerts`` event of a model-health finding. Pure.

The event follows ``schemas/quality_alert.v1.json`` like the reputation alerts (kinds
``model_drift`` and ``feedback_drop``, subject = the category), so it goes through the same
alert engine, outbox table and topic. :func:`model_health_event` validates it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import schemas
from stream.events import format_timestamp
from stream.monitoring.rules import ModelHealthFinding

SCHEMA_EVENT = "quality_alert"
SCHEMA_VERSION = 1


def health_alert_id(finding: ModelHealthFinding) -> str:
    """Deterministic id of one incident: kind, subject and window start, hashed the way the
    reputation alerts' ids are."""
    key = (
        f"{finding.kind}|{finding.subject_type}|{finding.subject}|"
        f"{format_timestamp(finding.window.start)}"
    )
    return hashlib.md5(key.encode("utf-8"), usedforsecurity=False).hexdigest()


def model_health_event(
    finding: ModelHealthFinding,
    raised_at: datetime,
    sample_review_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The validated ``review.alerts`` v1 event for a new model-health incident. Samples
    default to the finding's own (see ``stream.monitoring.queries.sample_review_ids``)."""
    samples = finding.sample_review_ids if sample_review_ids is None else sample_review_ids
    event = {
        "schema_version": SCHEMA_VERSION,
        "alert_id": health_alert_id(finding),
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
