"""``reviewpulse worker`` and ``reviewpulse produce``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from model.corpus import SHIPPED_CORPUS
from stream.config import (
    BatchConfig,
    KafkaConfig,
    LogConfig,
    WorkerConfig,
    add_config_arguments,
    resolve,
)

WORKER_HELP = """\
Run the stream worker: consume review.created in micro-batches, dead-letter invalid events,
segment (jieba) and classify (one model call per batch), publish review.sentiment, insert into
ClickHouse, and only then let the batch's offsets commit. Serves /metrics, /health and
POST /predict on --web-port. Creates missing topics, then joins the consumer group while it
loads the model and jieba and applies ClickHouse migrations (--no-migrate only checks that the
schema is there); it takes no batch before all of that is done (/health/ready says so).

Exit codes: 0 stopped; 1 start-up failed (model refused, ClickHouse down or without schema);
70 a sink (ClickHouse, broker, model) stayed down after all retries;
71 the dead-letter limit tripped; 72 unexpected error in a batch; 75 stopped mid-batch.
Whenever the code is not 0 the batch in hand was NOT acked: a restart re-reads it, and the
idempotent sinks (keyed by review_id) absorb the repeat.
"""

PRODUCE_HELP = """\
Replay reviews as review.created events (key = product_id, murmur2_random partitioner, the
same partitions Faust would pick). The source is the shipped corpus (default) or a JSONL file
whose lines are full review.created payloads (sent as is) or {"text", "category", "label"}
objects. Review ids, products, users, ratings and created_at (= send time) are generated from
--seed. --malformed-share swaps that share of events for bad ones of every kind the worker
dead-letters, for demos and tests; --manifest writes what each event should become.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    worker = subparsers.add_parser(
        "worker", help="run the stream worker", description=WORKER_HELP, formatter_class=formatter
    )
    worker.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply ClickHouse migrations; fail unless the reviews table exists",
    )
    add_config_arguments(worker, *WorkerConfig.sections().values())
    worker.set_defaults(func=run_worker)

    produce = subparsers.add_parser(
        "produce",
        help="replay the corpus or a JSONL file as review.created events",
        description=PRODUCE_HELP,
        formatter_class=formatter,
    )
    produce.add_argument(
        "--source",
        type=Path,
        default=SHIPPED_CORPUS,
        help="corpus .zip/.csv (cat,label,review) or .jsonl file [default: the shipped corpus]",
    )
    produce.add_argument(
        "--count", type=int, default=1000, help="events to send; 0 = the source once [1000]"
    )
    produce.add_argument(
        "--rate", type=float, default=200.0, help="events per second; 0 = as fast as possible"
    )
    produce.add_argument(
        "--malformed-share",
        type=float,
        default=0.0,
        help="share of events replaced by malformed ones, 0..1 [0]",
    )
    produce.add_argument("--seed", type=int, default=0, help="seed for shuffling and ids [0]")
    produce.add_argument(
        "--id-prefix", default=None, help="review_id prefix [a random one per run]"
    )
    produce.add_argument(
        "--products-per-category", type=int, default=5, help="distinct products per category [5]"
    )
    produce.add_argument(
        "--manifest", type=Path, default=None, help="write one JSON line per event sent here"
    )
    add_config_arguments(produce, KafkaConfig, BatchConfig, LogConfig)
    produce.set_defaults(func=run_produce)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_worker(args: argparse.Namespace) -> int:
    import faust

    from stream.context import WorkerContext
    from stream.data_dir import DataDirInUse, DataDirLock
    from stream.kafka import ensure_topics
    from stream.startup import EXIT_STARTUP_FAILED
    from stream.worker import build_worker_app

    config = WorkerConfig.resolve(args)
    _configure_logging(config.log.log_level)
    log = logging.getLogger("reviewpulse.worker")
    kafka, web = config.kafka, config.web
    try:  # held until the process ends: its marker files are this process's alone
        data_dir = DataDirLock(kafka.worker_data_dir / kafka.app_id).acquire()
    except DataDirInUse as exc:
        log.critical("%s (exit code %d)", exc, EXIT_STARTUP_FAILED)
        return EXIT_STARTUP_FAILED
    ensure_topics(kafka)
    context = WorkerContext.create(config)
    app = build_worker_app(context)
    # The model, jieba and ClickHouse get ready while Faust starts and joins the group.
    context.prepare(migrate=not args.no_migrate)
    log.info(
        "worker %s: %s -> %s (dead letters: %s), ClickHouse %s, web http://%s:%d",
        kafka.app_id,
        kafka.input_topic,
        kafka.output_topic,
        kafka.dlq_topic,
        config.clickhouse.clickhouse_backend,
        web.web_host,
        web.web_port,
    )
    worker = faust.Worker(app, loglevel=config.log.log_level, quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as stop:
        return int(stop.code or 0)
    finally:
        context.close()
        data_dir.release()
    return 0


def run_produce(args: argparse.Namespace) -> int:
    from confluent_kafka import Producer

    from stream.kafka import ensure_topics, producer_config
    from stream.replay import EventFactory, cycle_sources, read_corpus, read_jsonl

    kafka, batch = resolve(KafkaConfig, args), resolve(BatchConfig, args)
    _configure_logging(resolve(LogConfig, args).log_level)
    if not 0 <= args.malformed_share <= 1:
        raise SystemExit("--malformed-share must be within 0..1")
    sources = (
        read_jsonl(args.source) if args.source.suffix == ".jsonl" else read_corpus(args.source)
    )
    if not sources:
        raise SystemExit(f"{args.source}: no reviews")
    count = args.count or len(sources)
    factory = EventFactory(
        seed=args.seed,
        id_prefix=args.id_prefix or uuid.uuid4().hex[:8],
        products_per_category=args.products_per_category,
        malformed_share=args.malformed_share,
        max_text_chars=batch.max_text_chars,
        max_event_bytes=batch.max_event_bytes,
    )
    ensure_topics(kafka, [kafka.input_topic])
    # Room for the oversized events a malformed replay sends on purpose.
    producer = Producer(producer_config(kafka, max_message_bytes=batch.max_event_bytes * 2))
    failures: list[str] = []

    def on_delivery(error, _message) -> None:
        if error is not None:
            failures.append(str(error))

    manifest = args.manifest.open("w", encoding="utf-8") if args.manifest else None
    started = time.monotonic()
    try:
        for i, source in zip(range(count), cycle_sources(sources, args.seed), strict=False):
            if args.rate > 0:
                delay = started + i / args.rate - time.monotonic()
                if delay > 0:
                    producer.poll(delay)
            event = factory.make(source, datetime.now(UTC))
            while True:
                try:
                    producer.produce(
                        kafka.input_topic, event.value, event.key, on_delivery=on_delivery
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
            if manifest:
                manifest.write(event.manifest_line() + "\n")
        remaining = producer.flush(60)
    finally:
        if manifest:
            manifest.close()
    elapsed = time.monotonic() - started
    print(
        f"sent {count} events ({factory.malformed} malformed) to {kafka.input_topic} "
        f"in {elapsed:.1f}s ({count / max(elapsed, 1e-9):.0f}/s); "
        f"undelivered {remaining + len(failures)}"
    )
    return 1 if remaining or failures else 0
