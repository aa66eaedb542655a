"""``reviewpulse worker`` and ``reviewpulse produce``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from stream.settings import PROJECT_ROOT, Settings, add_settings_arguments, settings_from_args

DEFAULT_CORPUS = PROJECT_ROOT / "data" / "reviews" / "online_shopping_10_cats.zip"

WORKER_HELP = """\
Run the stream worker: consume review.created in micro-batches, dead-letter invalid events,
segment (jieba) and classify (one model call per batch), publish review.sentiment, insert into
ClickHouse, and only then let the batch's offsets commit. Serves /metrics, /health and
POST /predict on --web-port. Creates missing topics and applies ClickHouse migrations first
(--no-migrate only checks that the schema is there).

Exit codes: 0 stopped; 70 a sink (ClickHouse, broker, model) stayed down after all retries;
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
    add_settings_arguments(worker)
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
        default=DEFAULT_CORPUS,
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
    add_settings_arguments(produce)
    produce.set_defaults(func=run_produce)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def topic_names(settings: Settings) -> list[str]:
    return [settings.input_topic, settings.output_topic, settings.dlq_topic, settings.alerts_topic]


def run_worker(args: argparse.Namespace) -> int:
    import faust

    from stream.app import WorkerContext, build_worker_app
    from stream.local.tansu import create_topics

    settings = settings_from_args(args)
    _configure_logging(settings.log_level)
    log = logging.getLogger("reviewpulse.worker")
    create_topics(settings.kafka_broker, topic_names(settings), settings.topic_partitions)
    context = WorkerContext.open(settings, migrate=not args.no_migrate)
    app = build_worker_app(context)
    log.info(
        "worker %s: %s -> %s (dead letters: %s), ClickHouse %s, web http://%s:%d",
        settings.app_id,
        settings.input_topic,
        settings.output_topic,
        settings.dlq_topic,
        settings.clickhouse_backend,
        settings.web_host,
        settings.web_port,
    )
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as stop:
        return int(stop.code or 0)
    finally:
        context.close()
    return 0


def run_produce(args: argparse.Namespace) -> int:
    from confluent_kafka import Producer

    from stream.local.tansu import create_topics
    from stream.replay import EventFactory, cycle_sources, read_corpus, read_jsonl

    settings = settings_from_args(args)
    _configure_logging(settings.log_level)
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
        max_text_chars=settings.max_text_chars,
        max_event_bytes=settings.max_event_bytes,
    )
    create_topics(settings.kafka_broker, [settings.input_topic], settings.topic_partitions)
    producer = Producer(producer_config(settings))
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
                        settings.input_topic, event.value, event.key, on_delivery=on_delivery
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
        f"sent {count} events ({factory.malformed} malformed) to {settings.input_topic} "
        f"in {elapsed:.1f}s ({count / max(elapsed, 1e-9):.0f}/s); "
        f"undelivered {remaining + len(failures)}"
    )
    return 1 if remaining or failures else 0


def producer_config(settings: Settings) -> dict[str, object]:
    """confluent-kafka settings for upstream-like producers (tests and ``produce``)."""
    return {
        "bootstrap.servers": settings.kafka_broker,
        "partitioner": "murmur2_random",  # the partition Faust/aiokafka would pick for a key
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.max.bytes": max(1_048_576, settings.max_event_bytes * 2),
    }
