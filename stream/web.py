"""HTTP pages on the Faust web server: ``/metrics``, ``/health`` and ``POST /predict``."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, is_dataclass
from typing import Any

import faust
from faust.web import Request, Response, View

from model.text import clean_text
from stream.context import WorkerContext
from stream.kafka import broker_reachable

HEALTH_TIMEOUT_S = 3.0


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
    max_text_chars = context.config.batch.max_text_chars

    class MetricsPage(View):
        """Prometheus text exposition of ``stream.metrics.Metrics``."""

        async def get(self, request: Request) -> Response:
            body, content_type = context.metrics.exposition()
            return self.bytes(body, headers={"Content-Type": content_type})

    class HealthPage(View):
        """Broker, ClickHouse and model status; 200 when all are up, 503 otherwise.
        ``assigned_partitions`` is information only: an idle spare member has none. The
        model part names the served version, whether it follows CURRENT, a version that
        hot reload refused (and why: the old model still serves, so still 200) and the
        shadow candidate's state."""

        async def get(self, request: Request) -> Response:
            loop = asyncio.get_running_loop()
            checks = await asyncio.gather(
                _check(
                    loop.run_in_executor(
                        None, broker_reachable, kafka.kafka_broker, HEALTH_TIMEOUT_S
                    )
                ),
                _check(
                    loop.run_in_executor(
                        context.clickhouse_executor, context.clickhouse.query, "SELECT 1"
                    )
                ),
            )
            broker, clickhouse = checks
            assigned = sorted(
                f"{tp.topic}[{tp.partition}]" for tp in self.app.consumer.assignment()
            )
            body = {
                "broker": {**broker, "assigned_partitions": assigned},
                "clickhouse": {**clickhouse, "backend": backend},
                "model": {
                    **context.models.status(),
                    "shadow": context.shadow.status() if context.shadow else None,
                },
            }
            body.update({name: part() for name, part in context.health_parts.items()})
            healthy = all(part["status"] == "ok" for part in body.values())
            body["status"] = "ok" if healthy else "degraded"
            return self.json(body, status=200 if healthy else 503)

    class PredictPage(View):
        """``{"texts": ["..."]}`` -> one prediction per text, with the model version."""

        async def post(self, request: Request) -> Response:
            try:
                payload = json.loads(await request.read())
                texts = payload["texts"] if isinstance(payload, dict) else None
                if not isinstance(texts, list) or not texts:
                    raise ValueError('send {"texts": ["review", ...]} with at least one text')
                if len(texts) > web.predict_max_texts:
                    raise ValueError(f"at most {web.predict_max_texts} texts per request")
                if not all(isinstance(text, str) for text in texts):
                    raise ValueError("every text must be a string")
                cleaned = [clean_text(text)[:max_text_chars] for text in texts]
                empty = [i for i, text in enumerate(cleaned) if not text]
                if empty:
                    raise ValueError(f"texts at {empty} are empty after cleaning")
            except (ValueError, KeyError, TypeError) as exc:
                context.metrics.predict_requests.labels("bad_request").inc()
                message = str(exc) if not isinstance(exc, KeyError) else "missing 'texts'"
                return self.json({"error": message}, status=400)
            loop = asyncio.get_running_loop()
            model = context.models.current  # one model for the whole request
            predictions = await loop.run_in_executor(
                context.model_executor, model.predict_cleaned, cleaned
            )
            context.metrics.predict_requests.labels("ok").inc()
            return self.json(
                {
                    "model_version": model.version,
                    "predictions": [prediction_json(p) for p in predictions],
                }
            )

    app.page("/metrics")(MetricsPage)
    app.page("/health")(HealthPage)
    app.page("/predict")(PredictPage)


async def _check(work: asyncio.Future) -> dict[str, str]:
    try:
        await asyncio.wait_for(work, timeout=HEALTH_TIMEOUT_S)
    except Exception as exc:
        return {"status": "down", "error": repr(exc)[:300]}
    return {"status": "ok"}
