"""``reviewpulse demo``: the whole pipeline on one machine, with nothing to set up.

Starts a local Tansu broker (unless one already answers on ``--kafka-broker``), runs the worker
on the embedded ClickHouse (chdb) as a child process, replays a sample of the shipped corpus
with a few malformed events mixed in, waits until every event is accounted for, and prints
where to look. It then keeps the worker running until Ctrl-C (or exits at once with
``--exit-after-replay``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from stream.config import PROJECT_ROOT, KafkaConfig, WorkerConfig, add_config_arguments
from stream.local.worker import WorkerExited, WorkerProcess, wait_for
from stream.metrics import read_samples, sample_total


def dead_letters_by_reason(metrics_text: str) -> dict[str, int]:
    samples = read_samples(metrics_text, "reviewpulse_events_dead_lettered_total")
    return {dict(labels)["reason"]: int(value) for labels, value in samples.items()}


@contextmanager
def local_broker(kafka: KafkaConfig) -> Iterator[str]:
    """Yield the bootstrap of a running broker: the configured one if it answers, else a
    Tansu broker started here and stopped on exit."""
    from stream.kafka import broker_reachable
    from stream.local.cli import broker_port
    from stream.local.processes import port_open
    from stream.local.tansu import TansuBroker

    host, port = kafka.kafka_broker.split(",")[0].rsplit(":", 1)
    if port_open(int(port), host) and broker_reachable(kafka.kafka_broker):
        print(f"using the broker already running at {kafka.kafka_broker}")
        yield kafka.kafka_broker
        return
    log_path = PROJECT_ROOT / ".run" / "demo-tansu.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with TansuBroker(broker_port(kafka.kafka_broker), log_path=log_path) as broker:
        print(f"started Tansu at {broker.bootstrap} (log {log_path})")
        yield broker.bootstrap


def print_where_to_look(config: WorkerConfig, base_url: str) -> None:
    kafka = config.kafka
    print(
        f"""
Where to look
  live page   {base_url}/   (pipeline, worst products, alerts, model health; read-only)
              {base_url}/products/<product_id>   one product's reviews and chart
  topics      {kafka.input_topic} -> {kafka.output_topic}
              dead letters: {kafka.dlq_topic}   alerts: {kafka.alerts_topic}
              broker: {kafka.kafka_broker}
  metrics     {base_url}/metrics
  health      {base_url}/health
  predict     curl -s -XPOST {base_url}/predict -H 'content-type: application/json' \\
                -d '{{"texts": ["质量很好，物流也快", "用了两天就坏了，要求退货"]}}'
  reports     {base_url}/reports/products   {base_url}/reports/complaints
              {base_url}/reports/alerts
  ClickHouse  embedded chdb at {config.clickhouse.chdb_path}; the worker holds it while it runs.
              After stopping (Ctrl-C), query it with:
                reviewpulse report
                reviewpulse sql "SELECT product_id, uniqExactMerge(reviews) AS n,
                  uniqExactMergeIf(reviews, sentiment = 'negative') AS negative
                  FROM sentiment_minute GROUP BY product_id ORDER BY n DESC LIMIT 10"
              (merge the states per product, not per sentiment: a review whose stored
              copies disagree on sentiment then still counts once)
"""
    )


def run_demo(args: argparse.Namespace) -> int:
    try:
        return _run_demo(args)
    except (WorkerExited, TimeoutError) as exc:
        raise SystemExit(str(exc)) from None


def _run_demo(args: argparse.Namespace) -> int:
    config = WorkerConfig.resolve(args)
    run_dir = PROJECT_ROOT / ".run"
    run_dir.mkdir(exist_ok=True)
    with ExitStack() as stack:
        bootstrap = stack.enter_context(local_broker(config.kafka))
        config = config.replace(kafka_broker=bootstrap)
        worker_log = run_dir / "demo-worker.log"
        print(f"starting the worker (log {worker_log}) ...")
        worker = stack.enter_context(WorkerProcess(config, worker_log))
        wait_for(
            lambda: worker.get("/health") is not None,
            timeout_s=180,
            what="the start",
            worker=worker,
        )

        print(f"live page: {worker.base_url}/  (open it now to watch the replay arrive)")
        print(f"replaying {args.count} reviews ({args.malformed_share:.0%} malformed) ...")
        produce = [sys.executable, "-m", "stream.cli", "produce", "--count", str(args.count)]
        produce += ["--rate", str(args.rate), "--malformed-share", str(args.malformed_share)]
        subprocess.run(produce, env=config.env(), check=True)

        started = time.monotonic()

        def metrics_text() -> str:
            return (worker.get("/metrics") or b"").decode()

        def accounted() -> bool:
            text = metrics_text()
            done = sample_total(text, "reviewpulse_events_processed_total")
            return done + sum(dead_letters_by_reason(text).values()) >= args.count

        wait_for(accounted, timeout_s=600, what="the replay to be processed", worker=worker)
        text = metrics_text()
        processed = sample_total(text, "reviewpulse_events_processed_total")
        print(
            f"\nprocessed {processed:.0f} reviews, dead-lettered "
            f"{json.dumps(dead_letters_by_reason(text), ensure_ascii=False)} "
            f"(drained {time.monotonic() - started:.1f}s after the replay finished)"
        )
        worst = worker.get("/reports/products?limit=5&min_reviews=5")
        if worst:
            from stream.reputation.cli import PRODUCT_TABLE
            from stream.reputation.reports import format_table

            print("\nworst products so far (GET /reports/products):")
            print(format_table(json.loads(worst)["rows"], PRODUCT_TABLE))
        print_where_to_look(config, worker.base_url)
        if args.exit_after_replay:
            return 0
        print("the worker keeps running; Ctrl-C stops it and the broker")
        try:
            while worker.alive():
                time.sleep(1)
        except KeyboardInterrupt:
            print("\nstopping ...")
            return 0
        code = worker.wait_exit(0)
        print(f"the worker exited with code {code}; see {worker_log}")
        return code or 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run broker, worker and a replay on this machine (embedded ClickHouse)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--count", type=int, default=3000, help="reviews to replay [3000]")
    parser.add_argument("--rate", type=float, default=500.0, help="events per second [500]")
    parser.add_argument(
        "--malformed-share", type=float, default=0.05, help="share of bad events [0.05]"
    )
    parser.add_argument(
        "--exit-after-replay",
        action="store_true",
        help="stop everything once the replay is processed instead of waiting for Ctrl-C",
    )
    add_config_arguments(parser, *WorkerConfig.sections().values())
    parser.set_defaults(func=run_demo)
