"""One incident, one alert: the incident lifecycle in event time. Pure.

The engine (and the simulation harness) feeds :class:`IncidentTracker` the findings of each
evaluation step in event-time order. Incidents are keyed by lane and subject
(:func:`incident_key`): the reputation kinds share one lane, so per subject (a product, a
category, the pipeline) the most important of them either continues the subject's open
incident or opens a new one; each model-health kind (``model_drift``, ``feedback_drop``) has
a lane of its own, so a model problem and a quality problem of one category are separate
incidents that do not suppress each other. An incident stays open until its lane and subject
have been evaluated and quiet for ``cooldown`` of event time, so:

* an incident that lasts all day is one alert;
* a worker restart, however long, does not re-raise an ongoing incident: the quiet time
  counts only event time that was evaluated (a gap the engine skips is bridged, not quiet);
* the incident id is a hash of the subject (and, for a kind with a lane of its own, the
  kind) and the event-time minute the incident was first detected at, not of the minute an
  evaluation happened to run, so two evaluators (or a re-evaluation after a crash) give an
  incident the same id; reputation ids are the same as before model health had lanes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from stream.reputation.rules import AlertKind, Finding, SubjectType, rank

# Kinds with an incident lane of their own; every other kind is in the reputation lane.
OWN_LANE_KINDS = frozenset({AlertKind.MODEL_DRIFT, AlertKind.FEEDBACK_DROP})
REPUTATION_LANE = "reputation"

IncidentKey = tuple[str, str, str]  # (lane, subject type, subject)


def lane(kind: AlertKind) -> str:
    """The incident lane of a kind: its own for model health, else the shared one."""
    return kind.value if kind in OWN_LANE_KINDS else REPUTATION_LANE


def incident_key(kind: AlertKind, subject_type: SubjectType, subject: str) -> IncidentKey:
    """One open incident per lane and subject."""
    return (lane(kind), subject_type.value, subject)


def incident_id(
    subject_type: SubjectType,
    subject: str,
    onset: datetime,
    kind: AlertKind = AlertKind.NEGATIVE_SPIKE,
) -> str:
    """Deterministic id of an incident: its lane, subject and the event-time minute of its
    onset (the reputation lane's ids hash subject and minute only, as they always did)."""
    minute = onset.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    key = f"{subject_type.value}|{subject}|{minute}"
    if kind in OWN_LANE_KINDS:
        key = f"{kind.value}|{key}"
    return hashlib.md5(key.encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class OpenIncident:
    """An incident already raised (read back from the alerts table, or opened this run).

    ``last_seen_at`` is event time: the latest step at which the condition held (or up to
    which a skipped gap was bridged)."""

    alert_id: str
    kind: AlertKind
    subject_type: SubjectType
    subject: str
    raised_at: datetime
    last_seen_at: datetime

    @property
    def key(self) -> IncidentKey:
        return incident_key(self.kind, self.subject_type, self.subject)


@dataclass(frozen=True)
class NewIncident:
    """A finding that opens an incident, with the incident's id."""

    alert_id: str
    finding: Finding


@dataclass
class IncidentTracker:
    """Open incidents by lane and subject, advanced step by step in event time."""

    cooldown: timedelta
    open: dict[IncidentKey, OpenIncident] = field(default_factory=dict)
    seen: dict[str, datetime] = field(default_factory=dict)  # alert_id -> new last_seen

    @classmethod
    def of(cls, cooldown: timedelta, incidents: Iterable[OpenIncident]) -> IncidentTracker:
        """A tracker holding ``incidents`` (the newest one per lane and subject)."""
        tracker = cls(cooldown)
        for incident in incidents:
            current = tracker.open.get(incident.key)
            if current is None or incident.last_seen_at > current.last_seen_at:
                tracker.open[incident.key] = incident
        return tracker

    def is_open(self, key: IncidentKey, at: datetime) -> bool:
        incident = self.open.get(key)
        return incident is not None and at - incident.last_seen_at <= self.cooldown

    def step(
        self, at: datetime, findings: Sequence[Finding], raised_at: datetime
    ) -> list[NewIncident]:
        """Feed one step's findings; returns the incidents it opens. Findings on a lane and
        subject with an open incident extend that incident instead."""
        best: dict[IncidentKey, Finding] = {}
        for finding in findings:
            key = incident_key(finding.kind, finding.subject_type, finding.subject)
            current = best.get(key)
            if current is None or rank(finding) < rank(current):
                best[key] = finding
        opened = []
        for key, finding in best.items():
            if self.is_open(key, at):
                incident = self.open[key]
                latest = max(at, incident.last_seen_at)
                self.open[key] = replace(incident, last_seen_at=latest)
                self.seen[incident.alert_id] = latest
                continue
            alert_id = incident_id(finding.subject_type, finding.subject, at, finding.kind)
            self.open[key] = OpenIncident(
                alert_id, finding.kind, finding.subject_type, finding.subject, raised_at, at
            )
            opened.append(NewIncident(alert_id, finding))
        return opened

    def bridge(self, since: datetime, until: datetime) -> None:
        """Event time ``[since, until)`` was not evaluated (a skipped backlog): incidents open
        at ``since`` stay open, as if seen at ``until``, so unobserved time is not quiet."""
        for key, incident in list(self.open.items()):
            if self.is_open(key, since) and until > incident.last_seen_at:
                self.open[key] = replace(incident, last_seen_at=until)
                self.seen[incident.alert_id] = until

    def extended(self) -> dict[str, datetime]:
        """alert_id -> ``last_seen_at`` of every incident seen (again) since the tracker was
        made: its condition held at some step, or a gap was bridged."""
        return dict(self.seen)
