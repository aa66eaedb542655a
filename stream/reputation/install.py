"""The reputation feature inside the Faust worker: the alert timer and the report pages.

The one place that knows both the engine and the pages: the engine does not import the web
layer, and the pages reach ClickHouse through the engine's thread.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from stream.kafka import raw_topic
from stream.reputation.engine import AlertEngine
from stream.reputation.publisher import FaustAlertPublisher
from stream.reputation.web import register_pages
from stream.sink.connection import connect
from stream.sink.proxies import LazyClickHouse

if TYPE_CHECKING:
    import faust

    from stream.config import AlertConfig, ClickHouseConfig, KafkaConfig
    from stream.metrics import Metrics
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
) -> AlertEngine:
    """Wire the alert engine and the report endpoints into a Faust worker app.

    Call once from the worker's app factory, before the worker starts. It registers:

    * the ``kafka.alerts_topic`` topic (raw bytes, key = subject);
    * a timer every ``alerts.alert_interval_s`` seconds that runs
      :meth:`AlertEngine.evaluate` on one worker of the consumer group: the one assigned
      partition 0 of the input topic (see :func:`owns_alerting`); a failed evaluation is
      logged and retried at the next tick;
    * ``GET /reports/products``, ``/reports/complaints``, ``/reports/alerts`` (JSON).

    ``clickhouse``: the connection the engine and the reports use from their own thread.
    Default: a new one from ``connect(clickhouse_config)``, opened on first use. With the
    embedded backend pass the worker's own chdb connection (one process, one directory),
    e.g. wrapped in ``stream.sink.proxies.SerialisedClickHouse``.
    """
    if clickhouse is None:
        clickhouse = LazyClickHouse(lambda: connect(clickhouse_config))
    topic = raw_topic(app, kafka.alerts_topic)
    engine = AlertEngine(alerts, clickhouse, FaustAlertPublisher(topic), metrics=metrics)

    @app.timer(alerts.alert_interval_s)
    async def evaluate_alerts() -> None:
        if not owns_alerting(app, kafka.input_topic):
            return
        try:
            await engine.evaluate()
        except Exception:
            log.exception("alert evaluation failed; retrying at the next tick")

    register_pages(app, engine)
    return engine


def owns_alerting(app: faust.App, input_topic: str) -> bool:
    """True on the one group member that holds partition 0 of ``input_topic``.

    Faust's ``on_leader`` timers need the leader topic, which the worker disables
    (``topic_disable_leader``), so the group's partition assignment picks the evaluator
    instead. During a rebalance two members may briefly both evaluate; the alert ids are
    deterministic and the table is keyed by them, so that costs at most a repeated message.
    """
    try:
        assigned = app.consumer.assignment()
    except Exception:  # consumer not started yet
        return False
    return any(tp.topic == input_topic and tp.partition == 0 for tp in assigned)
