"""The alert engine: evaluate the rules over ClickHouse on a timer and publish alerts.

One evaluation (:meth:`AlertEngine.evaluate`, callable directly):

1. read the open alerts (last seen within the cooldown) and pending ones from the
   ``alerts`` table: the dedup state lives in ClickHouse, so a restarted or new worker
   carries on where the last one stopped;
2. publish again any alert left ``pending`` by a crash (same id, same bytes);
3. read the window and baseline figures, run the pure rules, deduplicate
   (``rules.deduplicate``): findings on a subject with an open alert only extend that
   alert's ``last_seen_at``;
4. for each new incident: write it ``pending``, publish it keyed by subject, await the
   broker's ack, then write it ``published``.

All ClickHouse calls are blocking and run in a one-thread executor, which also keeps a
native connection on one thread. :func:`stream.reputation.install.install_reputation`
wires the engine into the Faust worker.
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
from typing import TYPE_CHECKING, Any, TypeVar

from stream.reputation import queries
from stream.reputation.alerts import (
    PENDING,
    PUBLISHED,
    Window,
    alert_event,
    alert_row,
    encode_event,
)
from stream.reputation.publisher import AlertPublisher
from stream.reputation.rules import Thresholds, deduplicate, evaluate_rules

if TYPE_CHECKING:
    from stream.config import AlertConfig
    from stream.metrics import Metrics
    from stream.sink.backend import ClickHouse

log = logging.getLogger(__name__)
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Evaluation:
    """What one evaluation did (for logs, tests and the one-shot CLI)."""

    window: Window
    findings: int = 0
    raised: list[dict[str, Any]] = field(default_factory=list)
    continued: list[str] = field(default_factory=list)
    republished: list[str] = field(default_factory=list)
    seconds: float = 0.0


class AlertEngine:
    """Evaluates alert rules against ClickHouse and publishes new incidents.

    ``clickhouse`` is used only from this engine's single worker thread; give it its own
    connection (or a backend that is safe to share, like chdb in the worker's process).
    """

    def __init__(
        self,
        alerts: AlertConfig,
        clickhouse: ClickHouse,
        publisher: AlertPublisher,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.alerts = alerts
        self.thresholds = Thresholds.from_config(alerts)
        self.clickhouse = clickhouse
        self.publisher = publisher
        self.metrics = metrics
        self.clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-engine")
        self._lock = asyncio.Lock()
        self._version = 0

    def window(self, now: datetime) -> Window:
        return Window.ending_at(
            now,
            timedelta(minutes=self.alerts.alert_window_minutes),
            timedelta(hours=self.alerts.alert_baseline_hours),
        )

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking ClickHouse call on the engine's own thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _next_version(self) -> int:
        # Strictly increasing across restarts (wall clock in ns) and within one process.
        self._version = max(self._version + 1, time.time_ns())
        return self._version

    async def evaluate(self, now: datetime | None = None) -> Evaluation:
        """One evaluation at ``now`` (default: the clock). Raises if ClickHouse or the
        broker fails; whatever was not published stays pending for the next run."""
        async with self._lock:
            started = time.perf_counter()
            try:
                result = await self._evaluate(now or self.clock())
            finally:
                elapsed = time.perf_counter() - started
                if self.metrics is not None:
                    self.metrics.alert_evaluation_seconds.observe(elapsed)
            result.seconds = elapsed
            return result

    async def _evaluate(self, now: datetime) -> Evaluation:
        ch = self.clickhouse
        window = self.window(now)
        result = Evaluation(window=window)
        stored = await self.run_blocking(
            queries.fetch_open_alerts, ch, now - self.thresholds.cooldown
        )
        stored = await self._republish_pending(stored, result)

        activity = await self.run_blocking(
            queries.fetch_activity, ch, window, self.thresholds.min_volume
        )
        findings = evaluate_rules(
            activity.products,
            activity.categories,
            self.thresholds,
            prior_negative_ratio=activity.prior_negative_ratio,
            prior_complaint_share=activity.prior_complaint_share,
        )
        result.findings = len(findings)
        decision = deduplicate(findings, [s.alert for s in stored], now, self.thresholds.cooldown)

        by_id = {s.alert.alert_id: s for s in stored}
        extended = [
            self._extend(by_id[open_alert.alert_id], now) for open_alert, _ in decision.continuing
        ]
        await self.run_blocking(queries.write_alert_rows, ch, extended)
        result.continued = [open_alert.alert_id for open_alert, _ in decision.continuing]

        events = []
        for finding in decision.new:
            samples = await self.run_blocking(
                queries.fetch_samples, ch, finding, window, self.alerts.alert_sample_reviews
            )
            events.append(alert_event(finding, window, samples, raised_at=now))
        if events:
            await self._publish(events, now)
            for event in events:
                log.warning("alert raised: %s %s", event["kind"], event["message"])
                if self.metrics is not None:
                    self.metrics.alerts_raised.labels(kind=event["kind"]).inc()
        result.raised = events
        return result

    def _extend(self, stored: queries.StoredAlert, now: datetime) -> dict[str, Any]:
        """A new version of an open alert's row with ``last_seen_at = now``."""
        event = json.loads(stored.payload)
        return alert_row(
            event, status=stored.status, last_seen_at=now, version=self._next_version()
        )

    async def _publish(self, events: list[dict[str, Any]], now: datetime) -> None:
        """Outbox order: pending row, publish and await the ack, published row."""
        ch = self.clickhouse
        pending = [
            alert_row(e, status=PENDING, last_seen_at=now, version=self._next_version())
            for e in events
        ]
        await self.run_blocking(queries.write_alert_rows, ch, pending)
        await self.publisher.publish([(e["subject"], encode_event(e)) for e in events])
        published = [
            alert_row(e, status=PUBLISHED, last_seen_at=now, version=self._next_version())
            for e in events
        ]
        await self.run_blocking(queries.write_alert_rows, ch, published)

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
