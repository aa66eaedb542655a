"""The reputation feature inside the Faust worker: the alert timer and the report pages.

The one place that knows both the engine and the pages: the engine does not import the web
layer, and the pages reach ClickHouse through the engine's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stream.kafka import ConsumerLagProbe, Fenced
from stream.reputation.engine import AlertEngine
from stream.reputation.ownership import AlertOwnership
from stream.reputation.publisher import FencedAlertPublisher
from stream.reputation.web import register_pages
from stream.sink.connection import connect
from stream.sink.proxies import LazyClickHouse

if TYPE_CHECKING:
    import faust

    from stream.config import AlertConfig, ClickHouseConfig, KafkaConfig, MonitorConfig
    from stream.metrics import Metrics
    from stream.monitoring.health import ServedModel
    from stream.sink.backend import ClickHouse

log = logging.getLogger(__name__)


def install_reputation(
    app: faust.App,
    kafka: KafkaConfig,
    alerts: AlertConfig,
    clickhouse_config: ClickHouseConfig,
    *,
    clickhouse: ClickHouse | None = None,
    metrics: Metrics | None = None,
    monitor: MonitorConfig | None = None,
    served_model: Callable[[], ServedModel | None] | None = None,
) -> Callable[[], dict[str, Any]]:
    """Wire the alert engine and the report endpoints into a Faust worker app; returns the
    alerting part of ``/health``.

    Call once from the worker's app factory, before the worker starts. It registers:

    * a timer every ``alerts.alert_interval_s`` seconds that runs
      :meth:`AlertEngine.evaluate` on the one member of the consumer group that holds
      partition 0 of the input topic, fenced at the broker (``ownership.py``); a failed
      evaluation is logged, counted and retried at the next tick;
    * ``GET /reports/products``, ``/reports/complaints``, ``/reports/alerts`` (JSON).

    ``clickhouse``: the connection the engine and the reports use from their own thread.
    Default: a new one from ``connect(clickhouse_config)``, opened on first use. With the
    embedded backend pass the worker's own chdb connection (one process, one directory),
    e.g. wrapped in ``stream.sink.proxies.SerialisedClickHouse``.

    ``monitor`` and ``served_model`` turn on the model-health alerts (``model_drift``,
    ``feedback_drop``) of the model the worker serves (see ``AlertEngine``).
    """
    if clickhouse is None:
        clickhouse = LazyClickHouse(lambda: connect(clickhouse_config))
    publisher = FencedAlertPublisher(kafka)
    engine = AlertEngine(
        alerts,
        clickhouse,
        publisher,
        metrics=metrics,
        lag_probe=LazyLagProbe(kafka),
        pipeline=kafka.input_topic,
        monitor=monitor,
        served_model=served_model,
    )
    ownership = AlertOwnership(kafka.input_topic)

    def show_role() -> None:
        if metrics is not None:
            metrics.alert_evaluator.set(1 if ownership.holds else 0)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        ownership.assigned(assigned)
        if not ownership.holds:
            publisher.release()
        show_role()

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        ownership.revoked(revoked)
        if not ownership.holds:
            publisher.release()
        show_role()

    @app.timer(alerts.alert_interval_s, name="reviewpulse.alerts")
    async def evaluate_alerts() -> None:
        if not ownership.holds:
            return
        if publisher.term != ownership.term:
            try:
                await publisher.acquire(ownership.term)
            except Exception as exc:
                engine.record_failure(exc)
                log.exception("could not take the alert producer; retrying at the next tick")
                return
            log.info("alert evaluator for term %d: producer acquired", ownership.term)
        try:
            await engine.evaluate()
        except Fenced:
            ownership.fenced()
            show_role()
            log.warning("alert producer fenced: another member evaluates now; standing by")
        except Exception:
            log.exception("alert evaluation failed; retrying at the next tick")

    @app.on_before_shutdown.connect
    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        publisher.close()

    register_pages(app, engine)

    def health() -> dict[str, Any]:
        status = {**ownership.status(), **engine.health()}
        if not ownership.holds:
            status["status"] = "ok"  # a standby member's stale figures are not a failure
        return status

    return health


class LazyLagProbe:
    """A ``ConsumerLagProbe`` created on first use, on the thread that uses it."""

    def __init__(self, kafka: KafkaConfig) -> None:
        self.kafka = kafka
        self._probe: ConsumerLagProbe | None = None

    def measure(self, now_s: float) -> Any:
        if self._probe is None:
            self._probe = ConsumerLagProbe(self.kafka, self.kafka.input_topic)
        return self._probe.measure(now_s)
