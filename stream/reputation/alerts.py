"""Quality alerts: building the ``review.alerts`` event and the ``alerts`` table row. Pure.

The event follows ``schemas/quality_alert.v1.json``; :func:`alert_event` validates it. The
table row keeps the exact event JSON in ``payload`` so a re-publish after a crash sends the
same bytes with the same ``alert_id``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Window:
    """The evaluated window ``[start, end)`` and the baseline ``[baseline_start, start)``."""

    start: datetime
    end: datetime
    baseline_start: datetime

    @classmethod
    def ending_at(cls, now: datetime, window: timedelta, baseline: timedelta) -> Window:
        """Minute-aligned window that includes ``now``'s (still filling) minute."""
        end = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = end - window
        return cls(start=start, end=end, baseline_start=start - baseline)

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


def alert_id(kind: AlertKind, subject_type: SubjectType, subject: str, start: datetime) -> str:
    """Deterministic id of one incident: the same finding in the same window, same id."""
    key = f"{kind.value}|{subject_type.value}|{subject}|{format_timestamp(start)}"
    return hashlib.md5(key.encode("utf-8"), usedforsecurity=False).hexdigest()


def _percent(value: float | int) -> str:
    return f"{100 * float(value):.0f}%"


def describe(finding: Finding, window: Window) -> str:
    """One readable line about a finding."""
    f = finding.figures
    where = f"{finding.subject_type.value} {finding.subject}"
    span = f"the last {window.minutes} min"
    if finding.kind is AlertKind.NEGATIVE_SPIKE:
        return (
            f"{where} ({finding.category}): {_percent(f['negative_ratio'])} negative in {span} "
            f"({f['window_negative']} of {f['window_reviews']}), {f['lift']:.1f}x its baseline "
            f"of {_percent(f['baseline_ratio'])}"
        )
    if finding.kind is AlertKind.COMPLAINT_SURGE:
        words = ", ".join(word for word, _ in finding.top_complaints[:3]) or "complaints"
        return (
            f"{where} ({finding.category}): {f['complaint_reviews']} of {f['window_reviews']} "
            f"reviews in {span} are complaints ({words}), {f['lift']:.1f}x its baseline share"
        )
    return (
        f"{where}: net score fell by {f['drop']:.2f} to {f['window_net_score']:.2f} in {span} "
        f"(baseline {f['baseline_net_score']:.2f}, {f['window_reviews']} reviews)"
    )


def alert_event(
    finding: Finding,
    window: Window,
    sample_review_ids: Sequence[str],
    raised_at: datetime,
) -> dict[str, Any]:
    """The validated ``review.alerts`` v1 event for a new incident."""
    event = {
        "schema_version": SCHEMA_VERSION,
        "alert_id": alert_id(finding.kind, finding.subject_type, finding.subject, window.start),
        "kind": finding.kind.value,
        "severity": finding.severity.value,
        "subject_type": finding.subject_type.value,
        "subject": finding.subject,
        "category": finding.category,
        "window_start": format_timestamp(window.start),
        "window_end": format_timestamp(window.end),
        "baseline_start": format_timestamp(window.baseline_start),
        "figures": dict(finding.figures),
        "top_complaints": [
            {"keyword": word, "reviews": int(count)} for word, count in finding.top_complaints
        ],
        "sample_review_ids": list(sample_review_ids),
        "message": describe(finding, window),
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
