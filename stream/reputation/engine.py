"""The alert engine: evaluate the rules over ClickHouse in event time and publish alerts.

One evaluation (:meth:`AlertEngine.evaluate`, callable directly):

1. read the watermark (the newest processed minute of event time, never after the wall
   clock) and the progress (the last minute evaluated, ``alert_progress``), and plan the
   minute buckets to step through (``grid.plan_steps``): a backlog is evaluated minute by
   minute at its own event time, so consumer lag delays an alert but cannot hide it;
2. read the open incidents (``alerts``, last seen within the cooldown of event time) and
   publish again any alert a crash left ``pending`` (same id, same bytes);
3. relearn the per-category complaint lexicon when it is due (``lexicon.py``);
4. read the minute grid and its hourly baseline (cached, ``baseline.py``), then for each
   bucket run the pure rules (``rules.evaluate_step``) and the incident tracker
   (``incidents.py``): a finding on a subject with an open incident extends it;
5. measure the consumer lag (``stream.kafka.ConsumerLagProbe``) for the pipeline-lag rule;
6. model health at the last bucket (``stream.monitoring.health``, when the engine has a
   ``MonitorConfig``): ``model_drift`` and ``feedback_drop`` of the served model's traffic
   (``served_model``: its version and card reference) per category, through the same
   tracker in incident lanes of their own; and the rolling rating-agreement gauge;
7. for each new incident: write it ``pending``, publish it keyed by subject, await the
   broker's ack, then write it ``published`` (the outbox); extend the open incidents seen;
   record the progress.

ClickHouse calls and the rules run on the engine's one thread, the lag probe on its own. A
failed evaluation raises, is counted (``reviewpulse_alert_evaluation_failures_total``) and
shows in :meth:`AlertEngine.health`; what was not published stays pending for the next run.
:func:`stream.reputation.install.install_reputation` wires the engine into the worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from stream.events import format_timestamp
from stream.kafka import Fenced
from stream.keywords import COMPLAINT_LEXICON_FILE, read_complaint_lexicon
from stream.monitoring.alerts import incident_finding, model_health_event
from stream.monitoring.health import ServedModel, evaluate_model_health, refresh_agreement_gauge
from stream.monitoring.queries import sample_review_ids
from stream.monitoring.rules import ModelHealthFinding
from stream.reputation import queries
from stream.reputation.alerts import PENDING, PUBLISHED, alert_event, alert_row, encode_event
from stream.reputation.baseline import HOUR, BaselineCache
from stream.reputation.grid import MINUTE, MinuteGrid, StepPlan, floor_hour, plan_steps
from stream.reputation.incidents import OWN_LANE_KINDS, IncidentTracker, NewIncident
from stream.reputation.lexicon import Lexicon, learn_lexicon
from stream.reputation.publisher import AlertPublisher
from stream.reputation.rules import (
    Finding,
    RuleSettings,
    SubjectType,
    evaluate_step,
    pipeline_lag,
)

if TYPE_CHECKING:
    from stream.config import AlertConfig, MonitorConfig
    from stream.kafka import ConsumerLag
    from stream.metrics import Metrics
    from stream.sink.backend import ClickHouse

log = logging.getLogger(__name__)
T = TypeVar("T")
# Consecutive failed evaluations after which /health reports the engine as failing.
FAILING_AFTER = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


class LagProbe(Protocol):
    """What the engine needs of ``stream.kafka.ConsumerLagProbe`` (blocking)."""

    def measure(self, now_s: float) -> ConsumerLag: ...


def curated_terms() -> frozenset[str]:
    """Every canonical term and variant of the curated complaint lexicon."""
    lexicon = read_complaint_lexicon(COMPLAINT_LEXICON_FILE)
    return frozenset(word for variants in lexicon.values() for word in variants)


@dataclass
class Evaluation:
    """What one evaluation did (for logs, tests and the one-shot CLI)."""

    plan: StepPlan
    watermark: datetime | None = None
    findings: int = 0
    raised: list[dict[str, Any]] = field(default_factory=list)
    continued: list[str] = field(default_factory=list)
    republished: list[str] = field(default_factory=list)
    lag: ConsumerLag | None = None
    model_health: list[ModelHealthFinding] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class EngineHealth:
    """The engine's state for ``/health``."""

    evaluations: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_evaluation_at: datetime | None = None
    last_success_at: datetime | None = None
    watermark: datetime | None = None
    evaluated_until: datetime | None = None
    lag_seconds: float | None = None
    lexicon_words: int = 0
    lexicon_learned_at: datetime | None = None
    model_checked: str | None = None  # the model version whose health was evaluated last
    model_reference: bool = False  # its card has a reference profile (drift is checked)
    model_findings: int = 0

    def as_dict(self) -> dict[str, Any]:
        def when(moment: datetime | None) -> str | None:
            return None if moment is None else format_timestamp(moment)

        return {
            "status": "failing" if self.consecutive_failures >= FAILING_AFTER else "ok",
            "evaluations": self.evaluations,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "last_evaluation_at": when(self.last_evaluation_at),
            "last_success_at": when(self.last_success_at),
            "watermark": when(self.watermark),
            "evaluated_until": when(self.evaluated_until),
            "lag_seconds": self.lag_seconds,
            "lexicon_learned_words": self.lexicon_words,
            "lexicon_learned_at": when(self.lexicon_learned_at),
            "model_health": {
                "model_version": self.model_checked,
                "drift_reference": self.model_reference,
                "findings": self.model_findings,
            },
        }


class AlertEngine:
    """Evaluates the alert rules against ClickHouse and publishes new incidents.

    ``clickhouse`` is used only from this engine's single ClickHouse thread; give it its own
    connection (or a backend that is safe to share, like chdb in the worker's process).
    ``lag_probe`` (optional) feeds the pipeline-lag rule; ``pipeline`` names its subject.
    ``monitor`` (optional) turns on the model-health rules; ``served_model`` tells them which
    model serves now (called on the event loop each evaluation, e.g. from the worker's model
    holder; without it feedback is checked over every version against its own baseline only).
    """

    def __init__(
        self,
        alerts: AlertConfig,
        clickhouse: ClickHouse,
        publisher: AlertPublisher,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utc_now,
        lag_probe: LagProbe | None = None,
        pipeline: str = "review.created",
        monitor: MonitorConfig | None = None,
        served_model: Callable[[], ServedModel | None] | None = None,
    ) -> None:
        self.alerts = alerts
        self.settings = RuleSettings.from_config(alerts)
        self.clickhouse = clickhouse
        self.publisher = publisher
        self.metrics = metrics
        self.clock = clock
        self.lag_probe = lag_probe
        self.pipeline = pipeline
        self.monitor = monitor
        self.served_model = served_model
        self.status = EngineHealth()
        self.lexicon = Lexicon()
        self._curated = curated_terms()
        self._lexicon_due: datetime | None = None
        self._baseline = BaselineCache(
            lambda start, end: queries.fetch_hours(self.clickhouse, start, end),
            lambda start, end, lexicon: queries.fetch_hour_complaints(
                self.clickhouse, start, end, lexicon
            ),
            keep_hours=alerts.alert_baseline_hours,
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-engine")
        self._lag_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-lag")
        self._lock = asyncio.Lock()
        self._version = 0

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking ClickHouse call on the engine's own thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _next_version(self) -> int:
        # Strictly increasing across restarts (wall clock in ns) and within one process.
        self._version = max(self._version + 1, time.time_ns())
        return self._version

    def health(self) -> dict[str, Any]:
        return self.status.as_dict()

    def record_failure(self, exc: BaseException) -> None:
        """Count a failed evaluation (also one that failed before it could start)."""
        self.status.failures += 1
        self.status.consecutive_failures += 1
        self.status.last_error = repr(exc)[:300]
        if self.metrics is not None:
            self.metrics.alert_evaluation_failures.inc()

    async def evaluate(self, now: datetime | None = None) -> Evaluation:
        """One evaluation at wall-clock ``now`` (default: the clock). Raises if ClickHouse
        or the broker fails; whatever was not published stays pending for the next run."""
        async with self._lock:
            now = now or self.clock()
            started = time.perf_counter()
            self.status.evaluations += 1
            self.status.last_evaluation_at = now
            try:
                result = await self._evaluate(now)
            except Fenced:
                raise  # not a failure: another member evaluates now
            except Exception as exc:
                self.record_failure(exc)
                raise
            finally:
                elapsed = time.perf_counter() - started
                if self.metrics is not None:
                    self.metrics.alert_evaluation_seconds.observe(elapsed)
            self.status.consecutive_failures = 0
            self.status.last_error = None
            self.status.last_success_at = now
            result.seconds = elapsed
            return result

    async def _evaluate(self, now: datetime) -> Evaluation:
        ch = self.clickhouse
        settings = self.settings
        lag_task = None
        if self.lag_probe is not None:
            lag_task = asyncio.get_running_loop().run_in_executor(
                self._lag_executor, self._measure_lag, now
            )
        progress = await self.run_blocking(queries.fetch_progress, ch)
        watermark = await self.run_blocking(queries.fetch_watermark, ch, now)
        plan = plan_steps(progress, watermark, settings.detector.longest)
        result = Evaluation(plan=plan, watermark=watermark)
        self.status.watermark = watermark

        horizon = (plan.first or now) - settings.cooldown
        if plan.skipped is not None:
            horizon = min(horizon, plan.skipped[0] - settings.cooldown)
        stored = await self.run_blocking(queries.fetch_open_alerts, ch, horizon)
        stored = await self._republish_pending(stored, result)
        tracker = IncidentTracker.of(settings.cooldown, [s.alert for s in stored])
        if plan.skipped is not None:
            tracker.bridge(*plan.skipped)
            log.warning(
                "alert engine skipped event time %s..%s (longer than it replays)",
                *(format_timestamp(t) for t in plan.skipped),
            )

        opened: list[NewIncident] = []
        if plan.buckets:
            await self._refresh_lexicon(now, watermark)
            for bucket, findings in await self._judge(plan, watermark, now):
                result.findings += len(findings)
                opened += tracker.step(bucket, findings, raised_at=now)

        lag = await lag_task if lag_task is not None else None
        result.lag = lag
        if lag is not None:
            at = plan.last or now.replace(second=0, microsecond=0)
            finding = pipeline_lag(lag.seconds, self.pipeline, at, settings, messages=lag.messages)
            opened += tracker.step(at, [finding] if finding else [], raised_at=now)

        if self.monitor is not None and plan.last is not None:
            result.model_health = await self._model_health(plan.last)
            result.findings += len(result.model_health)
            found = [incident_finding(f) for f in result.model_health]
            opened += tracker.step(plan.last, found, raised_at=now)
        health = {(f.kind, f.subject): f for f in result.model_health}

        events = [await self._event(new, now, health) for new in opened]
        if events:
            await self._publish(events, tracker)
            for event in events:
                log.warning("alert raised: %s %s", event["kind"], event["message"])
                if self.metrics is not None:
                    self.metrics.alerts_raised.labels(kind=event["kind"]).inc()
        result.raised = events

        new_ids = {new.alert_id for new in opened}
        seen = {k: v for k, v in tracker.extended().items() if k not in new_ids}
        by_id = {s.alert.alert_id: s for s in stored}
        extended = [self._extend(by_id[i], seen[i]) for i in sorted(seen) if i in by_id]
        await self.run_blocking(queries.write_alert_rows, ch, extended)
        result.continued = sorted(i for i in seen if i in by_id)
        if plan.last is not None:
            await self.run_blocking(
                queries.write_progress, ch, plan.last, now, self._next_version()
            )
            self.status.evaluated_until = plan.last
        return result

    def _measure_lag(self, now: datetime) -> ConsumerLag | None:
        """The consumer lag (on the probe's thread); a failed probe is logged and gives None:
        the other rules still run."""
        assert self.lag_probe is not None
        try:
            lag = self.lag_probe.measure(now.timestamp())
        except Exception:
            log.exception("could not measure the consumer lag")
            return None
        self.status.lag_seconds = round(lag.seconds, 1)
        if self.metrics is not None:
            self.metrics.pipeline_lag_seconds.set(lag.seconds)
        return lag

    async def _judge(
        self, plan: StepPlan, watermark: datetime | None, now: datetime
    ) -> list[tuple[datetime, list[Finding]]]:
        """Read the minute grid (from the hour before the first step's longest window to the
        last step) and its baseline hours, and run the rules at every step; all on the
        engine's thread, off the event loop."""
        assert plan.first is not None and plan.last is not None and watermark is not None
        settings = self.settings
        start = floor_hour(plan.first - (settings.detector.longest - 1) * MINUTE)
        end = plan.last + MINUTE
        baseline_start = start - self.alerts.alert_baseline_hours * HOUR
        lexicon = self.lexicon

        def work() -> list[tuple[datetime, list[Finding]]]:
            history = self._baseline.history(baseline_start, start, watermark, lexicon)
            counts = queries.fetch_minutes(self.clickhouse, start, end, lexicon)
            grid = MinuteGrid(start, int((end - start) / MINUTE), counts, history)
            windows = settings.detector.windows
            return [
                (
                    bucket,
                    evaluate_step(grid.step(bucket, windows, min(bucket + MINUTE, now)), settings),
                )
                for bucket in plan.buckets
            ]

        return await self.run_blocking(work)

    async def refresh_lexicon(self, now: datetime) -> Lexicon:
        """Relearn the complaint lexicon now (evaluations do it when it is due)."""
        watermark = await self.run_blocking(queries.fetch_watermark, self.clickhouse, now)
        self._lexicon_due = None
        await self._refresh_lexicon(now, watermark)
        return self.lexicon

    async def _refresh_lexicon(self, now: datetime, watermark: datetime | None) -> None:
        if watermark is None or (self._lexicon_due is not None and now < self._lexicon_due):
            return
        alerts = self.alerts
        start = watermark - timedelta(days=alerts.alert_lexicon_days)
        stats, totals = await self.run_blocking(
            queries.fetch_keyword_stats,
            self.clickhouse,
            start,
            watermark + MINUTE,
            alerts.alert_lexicon_min_reviews,
        )
        self.lexicon = learn_lexicon(
            stats,
            totals,
            exclude=self._curated,
            min_reviews=alerts.alert_lexicon_min_reviews,
            min_lift=alerts.alert_lexicon_min_lift,
        )
        self._lexicon_due = now + timedelta(minutes=alerts.alert_lexicon_refresh_minutes)
        self.status.lexicon_words = self.lexicon.size
        self.status.lexicon_learned_at = now
        log.info(
            "complaint lexicon: %d learned keyword(s) in %d categories",
            self.lexicon.size,
            len(self.lexicon.learned),
        )

    async def _model_health(self, at: datetime) -> list[ModelHealthFinding]:
        """Model-health findings for the window ending with event-time minute ``at``, and the
        agreement gauge over the same event time; on the engine's thread."""
        assert self.monitor is not None
        monitor = self.monitor
        served = self.served_model() if self.served_model is not None else None
        version = served.version if served is not None else None
        reference = served.reference if served is not None else None

        def work() -> list[ModelHealthFinding]:
            found = evaluate_model_health(
                self.clickhouse, reference, monitor, at, model_version=version
            )
            if self.metrics is not None:
                refresh_agreement_gauge(self.clickhouse, self.metrics, monitor, at)
            return found

        findings = await self.run_blocking(work)
        self.status.model_checked = version
        self.status.model_reference = reference is not None
        self.status.model_findings = len(findings)
        return findings

    async def _event(
        self,
        new: NewIncident,
        now: datetime,
        health: dict[tuple[str, str], ModelHealthFinding],
    ) -> dict[str, Any]:
        """The alert event of a new incident, with its samples and top complaints (a
        model-health incident: its finding's event, with the reviews that show it)."""
        finding: Finding = new.finding
        if finding.kind in OWN_LANE_KINDS:
            found = health[(finding.kind.value, finding.subject)]
            samples = await self.run_blocking(
                sample_review_ids, self.clickhouse, found, self.alerts.alert_sample_reviews
            )
            return model_health_event(found, now, samples, alert_id=new.alert_id)
        end = finding.end or now
        start = end - timedelta(minutes=finding.window_minutes)
        if finding.subject_type is SubjectType.PRODUCT:
            top = await self.run_blocking(
                queries.fetch_top_complaints,
                self.clickhouse,
                finding.subject,
                start,
                end,
                self.lexicon,
            )
            finding = replace(finding, top_complaints=tuple(top))
        samples = await self.run_blocking(
            queries.fetch_samples,
            self.clickhouse,
            finding.subject_type,
            finding.subject,
            finding.kind,
            start,
            end,
            self.alerts.alert_sample_reviews,
        )
        return alert_event(finding, new.alert_id, samples, now, self.settings.baseline)

    def _extend(self, stored: queries.StoredAlert, last_seen: datetime) -> dict[str, Any]:
        """A new version of an open alert's row with a later ``last_seen_at``."""
        event = json.loads(stored.payload)
        return alert_row(
            event, status=stored.status, last_seen_at=last_seen, version=self._next_version()
        )

    async def _publish(self, events: list[dict[str, Any]], tracker: IncidentTracker) -> None:
        """Outbox order: pending rows, publish and await the ack, published rows."""
        ch = self.clickhouse
        seen = {i.alert_id: i.last_seen_at for i in tracker.open.values()}

        def rows(status: str) -> list[dict[str, Any]]:
            return [
                alert_row(
                    e,
                    status=status,
                    last_seen_at=seen.get(e["alert_id"], parse_end(e)),
                    version=self._next_version(),
                )
                for e in events
            ]

        await self.run_blocking(queries.write_alert_rows, ch, rows(PENDING))
        await self.publisher.publish([(e["subject"], encode_event(e)) for e in events])
        await self.run_blocking(queries.write_alert_rows, ch, rows(PUBLISHED))

    async def _republish_pending(
        self, stored: list[queries.StoredAlert], result: Evaluation
    ) -> list[queries.StoredAlert]:
        """Publish alerts a crash left pending (same bytes, same id); return ``stored``
        with their status updated."""
        pending = [s for s in stored if s.status == PENDING]
        if not pending:
            return stored
        await self.publisher.publish([(s.alert.subject, s.payload.encode()) for s in pending])
        rows = [
            alert_row(
                json.loads(s.payload),
                status=PUBLISHED,
                last_seen_at=s.alert.last_seen_at,
                version=self._next_version(),
            )
            for s in pending
        ]
        await self.run_blocking(queries.write_alert_rows, self.clickhouse, rows)
        result.republished = [s.alert.alert_id for s in pending]
        for s in pending:
            log.warning("alert published after a failed attempt: %s", s.alert.alert_id)
            if self.metrics is not None:
                self.metrics.alerts_raised.labels(kind=s.alert.kind.value).inc()
        return [replace(s, status=PUBLISHED) if s.status == PENDING else s for s in stored]

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._lag_executor.shutdown(wait=True)


def parse_end(event: dict[str, Any]) -> datetime:
    return datetime.strptime(event["window_end"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
