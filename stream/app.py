"""The ``faust.App`` of the worker, configured for at-least-once processing.

No module-level app: ``create_app`` returns a configured app; ``stream.worker`` adds the
review agent, the web pages and the alert engine to it.
"""

from __future__ import annotations

import faust

from stream.access import WebAccess
from stream.config import BatchConfig, KafkaConfig, WebConfig
from stream.faust_extensions import FetchWaitTransport, NoPauseTableManager
from stream.kafka import faust_producer_settings
from stream.web import access_middleware


def create_app(kafka: KafkaConfig, batch: BatchConfig, web: WebConfig) -> faust.App:
    """A ``faust.App`` on Kafka or Tansu: acks from all replicas, offsets committed only
    for acked events, no tables (ClickHouse holds all state; Tansu defect A). Memory under
    a backlog is bounded by the stream buffer and the fetch sizes; the web server reads
    bodies up to ``predict_max_body_bytes`` and checks every request's access
    (``stream.access``). The consumer long-polls ``consumer_fetch_max_wait_ms``, and with
    no tables the app subscribes without Faust's 1 s pause (``stream.faust_extensions``)."""
    kafka.worker_data_dir.mkdir(parents=True, exist_ok=True)  # Faust makes one level only
    app = faust.App(
        kafka.app_id,
        broker=[f"kafka://{server.strip()}" for server in kafka.kafka_broker.split(",")],
        processing_guarantee="at_least_once",
        autodiscover=False,
        store="memory://",
        datadir=str(kafka.worker_data_dir / kafka.app_id),
        topic_partitions=kafka.topic_partitions,
        topic_replication_factor=kafka.topic_replication_factor,
        topic_disable_leader=True,
        TableManager=NoPauseTableManager,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=kafka.session_timeout_s,
        broker_heartbeat_interval=kafka.heartbeat_interval_s,
        broker_commit_interval=kafka.commit_interval_s,
        stream_buffer_maxsize=kafka.stream_buffer_maxsize,
        consumer_max_fetch_size=kafka.consumer_max_fetch_bytes,
        broker_max_poll_records=kafka.consumer_max_poll_records,
        producer_acks=-1,
        producer_request_timeout=batch.sink_timeout_s,
        **faust_producer_settings(kafka),
        web_enabled=True,
        web_bind=web.web_host,
        web_host=web.web_host,
        web_port=web.web_port,
        web_in_thread=False,
        web_application_options={
            "client_max_size": web.predict_max_body_bytes,
            "middlewares": [access_middleware(WebAccess.of(web))],
        },
    )
    app.transport = FetchWaitTransport(
        app.conf.broker_consumer, app, fetch_max_wait_ms=kafka.consumer_fetch_max_wait_ms
    )
    return app
