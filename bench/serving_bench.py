"""What shadow scoring costs the stream, measured side by side in one run.

Starts a scratch Tansu broker and clickhouse-server and a scratch model registry (the shipped
model as v1, served, and a copy as v2, the candidate). For each shadow share (0 = no shadow)
it puts the same N replayed reviews on a fresh input topic, starts ``reviewpulse worker`` and
times until every valid review is stored, then reads the worker's /metrics: end-to-end
reviews/s, mean batch latency, the served model's time per batch, and what the shadow did
(reviews scored, dropped; its forward time). Prints a table and, with --json, writes it.

    .venv/bin/python -m bench.serving_bench --events 4000 --shares 0,0.25,1
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from model.card import CARD_FILE
from model.corpus import SHIPPED_CORPUS
from model.registry import publish, resolve_model_dir, start_shadow, stop_shadow
from stream.config import PROJECT_ROOT, WorkerConfig
from stream.kafka import AckedProducer
from stream.local.clickhouse_server import ClickHouseServer
from stream.local.tansu import TansuBroker
from stream.local.worker import WorkerProcess, scratch_config
from stream.metrics import read_samples
from stream.replay import EventFactory, cycle_sources, read_corpus

NAME = "sentiment"


def scratch_registry(root: Path) -> Path:
    """The shipped model as v1 (CURRENT) and as v2, under a scratch registry."""
    shipped = resolve_model_dir(PROJECT_ROOT / "model" / "registry", NAME)
    registry = root / "registry"
    for version in ("v1", "v2"):
        staging = root / f"staging-{version}"
        shutil.copytree(
            shipped, staging, ignore=shutil.ignore_patterns("evaluation", "exploration")
        )
        card = json.loads((staging / CARD_FILE).read_text(encoding="utf-8"))
        card["version"] = version
        (staging / CARD_FILE).write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")
        publish(registry, NAME, version, staging, make_current=version == "v1")
        shutil.rmtree(staging)
    return registry


def metric_sum(text: str, name: str) -> float:
    return sum(read_samples(text, name).values())


def run(config: WorkerConfig, events: list, valid: int, root: Path) -> dict:
    AckedProducer(config.kafka, timeout_s=60, max_message_bytes=2 * 1024 * 1024).send(
        config.kafka.input_topic, [(e.key, e.value, None) for e in events]
    )
    worker = WorkerProcess(config, root / "worker.log").start()
    first_at = done_at = None
    try:
        while True:
            if not worker.alive():
                raise RuntimeError(worker.log_tail())
            try:
                text = worker.metrics_text()
            except OSError:
                time.sleep(0.2)
                continue
            processed = metric_sum(text, "reviewpulse_events_processed_total")
            if first_at is None and processed > 0:
                first_at = time.monotonic()
            if processed >= valid and done_at is None:
                done_at = time.monotonic()
            queued = metric_sum(text, "reviewpulse_shadow_queue_batches")
            if done_at is not None and queued == 0:
                break
            time.sleep(0.1)
        _, health = worker.get_json("/health")
        final = worker.metrics_text()
        worker.stop()
    finally:
        if worker.alive():
            worker.kill9()
    batches = metric_sum(final, "reviewpulse_batch_latency_seconds_count")
    shadow_batches = metric_sum(final, "reviewpulse_shadow_latency_seconds_count")
    shadow = {
        dict(labels)["outcome"]: value
        for labels, value in read_samples(final, "reviewpulse_shadow_reviews_total").items()
    }
    return {
        "reviews_per_s": round(valid / (done_at - first_at), 1),
        "batches": int(batches),
        "batch_ms": round(
            1000 * metric_sum(final, "reviewpulse_batch_latency_seconds_sum") / batches, 1
        ),
        "model_ms_per_batch": round(
            1000 * metric_sum(final, "reviewpulse_model_latency_seconds_sum") / batches, 1
        ),
        "shadow_scored": int(shadow.get("scored", 0)),
        "shadow_dropped": int(shadow.get("dropped", 0) + shadow.get("expired", 0)),
        "shadow_failed": int(shadow.get("failed", 0)),
        "shadow_ms_per_batch": round(
            1000 * metric_sum(final, "reviewpulse_shadow_latency_seconds_sum") / shadow_batches, 1
        )
        if shadow_batches
        else None,
        "served_version": health["model"]["version"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--shares", default="0,0.25,1", help="comma-separated shadow shares")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    shares = [float(part) for part in args.shares.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="rp-serving-bench-") as scratch:
        root = Path(scratch)
        registry = scratch_registry(root)
        factory = EventFactory(seed=7, id_prefix="sb", malformed_share=0.0)
        sources = cycle_sources(read_corpus(SHIPPED_CORPUS), 7)
        events = [factory.make(next(sources), datetime.now(UTC)) for _ in range(args.events)]
        with (
            TansuBroker(log_path=root / "tansu.log") as broker,
            ClickHouseServer(root / "clickhouse") as server,
        ):
            for share in shares:
                if share:
                    start_shadow(registry, NAME, "v2", share)
                else:
                    stop_shadow(registry, NAME)
                config = scratch_config(
                    "bench",
                    bootstrap=broker.bootstrap,
                    data_dir=root,
                    clickhouse=server,
                    batch_size=args.batch_size,
                    model_registry=registry,
                )
                figures = run(config, events, len(events), root)
                results.append({"shadow_share": share, **figures})
                print(json.dumps(results[-1]), flush=True)
    columns = list(results[0])
    print()
    print(" | ".join(columns))
    for row in results:
        print(" | ".join("n/a" if row[c] is None else str(row[c]) for c in columns))
    if args.json:
        args.json.write_text(json.dumps({"events": args.events, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
