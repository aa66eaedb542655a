"""End-to-end throughput of the stream worker on this machine.

Starts a scratch Tansu broker and (for --backend native) a scratch clickhouse-server, puts N
replayed reviews on the input topic up front, starts ``reviewpulse worker`` as a subprocess and
times until every valid review is in ClickHouse. Prints the figures and where the batch time
went (model, ClickHouse, produce), read from the worker's own /metrics.

    .venv/bin/python -m bench.stream_bench --events 5000 --batch-sizes 128,256
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from model.corpus import SHIPPED_CORPUS
from stream.config import WorkerConfig
from stream.kafka import AckedProducer
from stream.local.clickhouse_server import ClickHouseServer
from stream.local.tansu import TansuBroker
from stream.local.worker import WorkerProcess, scratch_config
from stream.metrics import read_samples
from stream.replay import EventFactory, cycle_sources, read_corpus
from stream.sink.connection import connect


def metric(text: str, name: str) -> float:
    """One unlabelled sample of the worker's /metrics, NaN when it is missing."""
    return read_samples(text, name).get((), float("nan"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--malformed-share", type=float, default=0.05)
    parser.add_argument(
        "--batch-sizes",
        default="256",
        help="comma-separated; each size gets its own run (fresh topics, database and chdb "
        "directory) on the same broker and server, one after another, for side-by-side figures",
    )
    parser.add_argument("--max-length", type=int, default=128, help="model token limit")
    parser.add_argument("--backend", choices=("native", "embedded"), default="native")
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rp-bench-") as scratch:
        root = Path(scratch)
        with TansuBroker(log_path=root / "tansu.log") as broker:
            server = ClickHouseServer(root / "clickhouse") if args.backend == "native" else None
            if server:
                server.__enter__()
            try:
                codes = []
                for size in [int(part) for part in args.batch_sizes.split(",")]:
                    config = scratch_config(
                        "bench",
                        bootstrap=broker.bootstrap,
                        data_dir=root,
                        clickhouse=server,
                        topic_partitions=args.partitions,
                        batch_size=size,
                        model_max_length=args.max_length,
                    )
                    codes.append(run(config, args, root))
                    print()
                return max(codes)
            finally:
                if server:
                    server.__exit__(None, None, None)


def run(config: WorkerConfig, args: argparse.Namespace, root: Path) -> int:
    factory = EventFactory(
        seed=7,
        id_prefix="bench",
        malformed_share=args.malformed_share,
        max_text_chars=config.batch.max_text_chars,
        max_event_bytes=config.batch.max_event_bytes,
    )
    sources = cycle_sources(read_corpus(SHIPPED_CORPUS), 7)
    events = [factory.make(next(sources), datetime.now(UTC)) for _ in range(args.events)]
    valid = sum(e.expected_reason is None for e in events)
    started = time.monotonic()
    producer = AckedProducer(config.kafka, timeout_s=60, max_message_bytes=2 * 1024 * 1024)
    producer.send(config.kafka.input_topic, [(e.key, e.value, None) for e in events])
    produce_s = time.monotonic() - started

    worker = WorkerProcess(config, root / "worker.log").start()
    launched = time.monotonic()
    first_at = None
    try:
        while True:
            if not worker.alive():
                print(worker.log_tail(), file=sys.stderr)
                return 1
            try:
                text = worker.metrics_text()
            except OSError:
                time.sleep(0.2)
                continue
            processed = metric(text, "reviewpulse_events_processed_total")
            if first_at is None and processed > 0:
                first_at = time.monotonic()
            if processed >= valid:
                done_at = time.monotonic()
                break
            time.sleep(0.1)
        final = worker.metrics_text()
        code = worker.stop()
    finally:
        if worker.alive():
            worker.kill9()
    # (embedded: the worker has exited, so this process may open its chdb directory now)
    ch = connect(config.clickhouse)
    try:
        stored = ch.query("SELECT count() FROM reviews FINAL")[0][0]
    finally:
        ch.close()
    batches = metric(final, "reviewpulse_batch_size_count")
    steady = done_at - first_at
    print(
        f"backend: {args.backend}, partitions {config.kafka.topic_partitions}, "
        f"batch size {config.batch.batch_size}, model max_length {args.max_length}"
    )
    print(
        f"events: {args.events} ({args.events - valid} malformed), valid: {valid}, "
        f"in ClickHouse (FINAL): {stored}, worker exit code: {code}"
    )
    print(f"produce (confluent-kafka, in-process): {args.events / produce_s:,.0f} events/s")
    print(f"worker start to first row: {first_at - launched:.1f}s")
    print(f"first row to last row: {steady:.1f}s -> {valid / steady:,.0f} reviews/s end to end")
    print(
        f"start to last row (cold): {done_at - launched:.1f}s -> "
        f"{valid / (done_at - launched):,.0f} reviews/s"
    )
    print(f"batches: {batches:.0f}, mean size {args.events / batches:.1f}")
    for label, name in (
        ("model (jieba + forward)", "reviewpulse_model_latency_seconds_sum"),
        ("ClickHouse insert", "reviewpulse_clickhouse_insert_latency_seconds_sum"),
        ("produce + broker ack", "reviewpulse_produce_latency_seconds_sum"),
        ("whole batch", "reviewpulse_batch_latency_seconds_sum"),
    ):
        total = metric(final, name)
        print(f"  {label:<24} {total:7.2f}s total, {1000 * total / batches:7.1f} ms/batch")
    return 0 if stored == valid else 1


if __name__ == "__main__":
    sys.exit(main())
