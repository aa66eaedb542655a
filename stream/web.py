"""HTTP pages on the Faust web server: ``/metrics``, ``/health``, ``/health/live``,
``/health/ready`` and ``POST /predict``; the access check every page goes through; and the
timer that measures the consumer lag of the assigned partitions.

``/metrics`` and ``/health*`` are open (probes, scrapers); every other page needs the web
token when one is set, and answers only on a loopback bind address when none is
(:mod:`stream.access`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from typing import Any

import faust
from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View

from stream.access import WebAccess
from stream.context import WorkerContext
from stream.health import liveness, readiness, stalled
from stream.kafka import ConsumerLagProbe, broker_reachable
from stream.predict import PredictRefused, PredictService

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 3.0

Handler = Callable[[aiohttp_web.Request], Awaitable[aiohttp_web.StreamResponse]]


def access_middleware(access: WebAccess) -> Any:
    """An aiohttp middleware that refuses what ``access`` refuses (401/403, JSON body)."""

    @aiohttp_web.middleware
    async def check_access(
        request: aiohttp_web.Request, handler: Handler
    ) -> aiohttp_web.StreamResponse:
        denied = access.check(request.path, request.headers.get("Authorization"))
        if denied is None:
            return await handler(request)
        headers = {"WWW-Authenticate": "Bearer"} if denied.status == 401 else None
        return aiohttp_web.json_response(
            {"error": denied.message}, status=denied.status, headers=headers
        )

    return check_access


def access_guard(access: WebAccess) -> Callable[[Any, Any], Awaitable[Any | None]]:
    """The same check for one Faust view (``async guard(view, request)``: None to proceed,
    else the refusal), for pages that want it explicitly; the middleware already applies
    it to every page."""

    async def guard(view: Any, request: Any) -> Any | None:
        denied = access.check(request.path, request.headers.get("Authorization"))
        if denied is None:
            return None
        headers = {"WWW-Authenticate": "Bearer"} if denied.status == 401 else None
        return view.json({"error": denied.message}, status=denied.status, headers=headers)

    return guard


def prediction_json(prediction: Any) -> dict[str, Any]:
    data = asdict(prediction) if is_dataclass(prediction) else dict(vars(prediction))
    return {
        "label": data["label"],
        "confidence": round(float(data["confidence"]), 6),
        "probabilities": {k: round(float(v), 6) for k, v in data["probabilities"].items()},
    }


def register_pages(app: faust.App, context: WorkerContext) -> None:
    kafka, web = context.config.kafka, context.config.web
    backend = context.config.clickhouse.clickhouse_backend
    metrics = context.metrics
    heartbeat = context.heartbeat
    predict = PredictService(
        context.models,
        web,
        max_text_chars=context.config.batch.max_text_chars,
        executor=context.predict_executor,
        stream_model=heartbeat,
        metrics=metrics,
    )
    metrics.batch_idle_seconds.set_function(heartbeat.idle_s)
    metrics.batch_in_hand_seconds.set_function(heartbeat.in_hand_s)

    def assigned_partitions() -> list[int]:
        return sorted(
            tp.partition for tp in app.consumer.assignment() if tp.topic == kafka.input_topic
        )

    async def dependencies() -> dict[str, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        broker, clickhouse = await asyncio.gather(
            _check(
                loop.run_in_executor(None, broker_reachable, kafka.kafka_broker, HEALTH_TIMEOUT_S)
            ),
            _check(
                loop.run_in_executor(
                    context.clickhouse_executor, context.clickhouse.query, "SELECT 1"
                )
            ),
        )
        return {"broker": broker, "clickhouse": {**clickhouse, "backend": backend}}

    class MetricsPage(View):
        """Prometheus text exposition of ``stream.metrics.Metrics``."""

        async def get(self, request: Request) -> Response:
            body, content_type = context.metrics.exposition()
            return self.bytes(body, headers={"Content-Type": content_type})

    class HealthPage(View):
        """Broker, ClickHouse, model and processing-loop status; 200 when all are up, 503
        otherwise. ``assigned_partitions`` is information only here (an idle spare member
        has none; ``/health/ready`` is the stricter check). The model part names the served
        version, whether it follows CURRENT, a version that hot reload refused (and why: the
        old model still serves, so still 200) and the shadow candidate's state."""

        async def get(self, request: Request) -> Response:
            deps = await dependencies()
            assigned = sorted(
                f"{tp.topic}[{tp.partition}]" for tp in self.app.consumer.assignment()
            )
            body = {
                "broker": {**deps["broker"], "assigned_partitions": assigned},
                "clickhouse": deps["clickhouse"],
                "model": {
                    **context.models.status(),
                    "shadow": context.shadow.status() if context.shadow else None,
                },
                "loop": liveness(heartbeat, web.health_live_timeout_s),
            }
            body.update({name: part() for name, part in context.health_parts.items()})
            healthy = all(part["status"] == "ok" for part in body.values())
            body["status"] = "ok" if healthy else "degraded"
            return self.json(body, status=200 if healthy else 503)

    class LivePage(View):
        """Liveness: 503 when a batch has been in hand longer than health-live-timeout-s
        (restart me); needs no dependency, so a broker outage does not restart workers."""

        async def get(self, request: Request) -> Response:
            body = liveness(heartbeat, web.health_live_timeout_s)
            return self.json(body, status=200 if body["status"] == "ok" else 503)

    class ReadyPage(View):
        """Readiness: start-up done, partitions assigned, broker and ClickHouse answer,
        batches move."""

        async def get(self, request: Request) -> Response:
            body = readiness(
                heartbeat=heartbeat,
                assigned=[f"{kafka.input_topic}[{p}]" for p in assigned_partitions()],
                lag=dict(context.lag),
                dependencies={**await dependencies(), "startup": context.startup.status()},
                stall_s=web.health_stall_s,
            )
            return self.json(body, status=200 if body["status"] == "ok" else 503)

    class PredictPage(View):
        """``{"texts": ["..."]}`` -> one prediction per text, with the model version
        (limits and the stream-first rule: :mod:`stream.predict`)."""

        async def post(self, request: Request) -> Response:
            try:
                await predict.admit()  # 429 before reading the body
                if (request.content_length or 0) > web.predict_max_body_bytes:
                    raise _too_large(web.predict_max_body_bytes)
                try:
                    body = await request.read()
                except aiohttp_web.HTTPRequestEntityTooLarge:
                    raise _too_large(web.predict_max_body_bytes) from None
                answer = await predict.answer(body)
            except PredictRefused as refused:
                metrics.predict_requests.labels(refused.outcome).inc()
                headers = {"Retry-After": "1"} if refused.status in (429, 503) else None
                return self.json({"error": str(refused)}, status=refused.status, headers=headers)
            metrics.predict_requests.labels("ok").inc()
            answer["predictions"] = [prediction_json(p) for p in answer["predictions"]]
            return self.json(answer)

    app.page("/metrics")(MetricsPage)
    app.page("/health")(HealthPage)
    app.page("/health/live")(LivePage)
    app.page("/health/ready")(ReadyPage)
    app.page("/predict")(PredictPage)
    install_lag_monitor(app, context, assigned_partitions)


def install_lag_monitor(
    app: faust.App, context: WorkerContext, assigned_partitions: Callable[[], list[int]]
) -> None:
    """Every lag-interval-s, measure the group's lag on this member's assigned partitions
    (on the lag thread, with its own consumer that does not join the group) into
    ``context.lag`` and the per-partition gauges; and note assignments in the heartbeat."""
    kafka, metrics = context.config.kafka, context.metrics
    probes: list[ConsumerLagProbe] = []  # created on the lag thread, on first use

    def measure(partitions: list[int]) -> dict:
        if not probes:
            probes.append(ConsumerLagProbe(kafka, kafka.input_topic))
        return probes[0].measure_partitions(time.time(), partitions)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        context.heartbeat.partitions_assigned()

    @app.timer(kafka.lag_interval_s, name="reviewpulse.consumer_lag")
    async def measure_lag() -> None:
        partitions = assigned_partitions()
        metrics.assigned_partitions.set(len(partitions))
        try:
            lag = await asyncio.get_running_loop().run_in_executor(
                context.lag_executor, measure, partitions
            )
        except Exception as exc:
            metrics.consumer_lag_failures.inc()
            log.warning("measuring the consumer lag failed: %r", exc)
            return
        for partition in set(context.lag) - set(lag):  # revoked since the last measurement
            for gauge in (metrics.consumer_lag_messages, metrics.consumer_lag_seconds):
                gauge.remove(kafka.input_topic, str(partition))
        context.lag.clear()
        context.lag.update(lag)
        for partition, part in lag.items():
            metrics.consumer_lag_messages.labels(kafka.input_topic, str(partition)).set(
                part.messages
            )
            metrics.consumer_lag_seconds.labels(kafka.input_topic, str(partition)).set(part.seconds)
        stall = stalled(context.heartbeat, lag, context.config.web.health_stall_s)
        metrics.batches_stalled.set(1 if stall else 0)

    @app.on_before_shutdown.connect
    async def close_probe(sender: Any, **kwargs: Any) -> None:
        if probes:
            await asyncio.get_running_loop().run_in_executor(context.lag_executor, probes[0].close)


def _too_large(limit: int) -> PredictRefused:
    return PredictRefused(413, "too_large", f"request body over {limit} bytes")


async def _check(work: asyncio.Future) -> dict[str, str]:
    try:
        await asyncio.wait_for(work, timeout=HEALTH_TIMEOUT_S)
    except Exception as exc:
        return {"status": "down", "error": repr(exc)[:300]}
    return {"status": "ok"}
