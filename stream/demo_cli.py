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
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from stream.settings import (
    PROJECT_ROOT,
    Settings,
    add_settings_arguments,
    settings_env,
    settings_from_args,
)


def http_get(url: str, timeout_s: float = 2.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.read()
    except (urllib.error.URLError, OSError):
        return None


def metric_total(metrics_text: str, name: str) -> float:
    """Sum of every sample of one counter (all label sets) in Prometheus text format."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == f"{name}_total":
                total += sample.value
    return total


def dead_letters_by_reason(metrics_text: str) -> dict[str, int]:
    from prometheus_client.parser import text_string_to_metric_families

    reasons: dict[str, int] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "reviewpulse_events_dead_lettered_total":
                reasons[sample.labels["reason"]] = int(sample.value)
    return reasons


@contextmanager
def local_broker(settings: Settings) -> Iterator[str]:
    """Yield the bootstrap of a running broker: the configured one if it answers, else a
    Tansu broker started here and stopped on exit."""
    from stream.local.cli import broker_port
    from stream.local.processes import port_open
    from stream.local.tansu import TansuBroker, broker_ready

    host, port = settings.kafka_broker.split(",")[0].rsplit(":", 1)
    if port_open(int(port), host) and broker_ready(settings.kafka_broker):
        print(f"using the broker already running at {settings.kafka_broker}")
        yield settings.kafka_broker
        return
    log_path = PROJECT_ROOT / ".run" / "demo-tansu.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with TansuBroker(broker_port(settings.kafka_broker), log_path=log_path) as broker:
        print(f"started Tansu at {broker.bootstrap} (log {log_path})")
        yield broker.bootstrap


@contextmanager
def worker_process(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """Run ``reviewpulse worker`` as a child; SIGTERM (then SIGKILL) it on exit."""
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"], env=env, stdout=log, stderr=log
        )
        try:
            yield child
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


def log_tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    child: subprocess.Popen,
    log_path: Path,
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if child.poll() is not None:
            raise SystemExit(
                f"{log_tail(log_path)}\n\nthe worker exited with code {child.returncode} "
                f"while {what}; its log: {log_path}"
            )
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s:.0f}s {what}")
        time.sleep(0.5)


def print_where_to_look(settings: Settings, base_url: str) -> None:
    print(
        f"""
Where to look
  topics      {settings.input_topic} -> {settings.output_topic}
              dead letters: {settings.dlq_topic}   alerts: {settings.alerts_topic}
              broker: {settings.kafka_broker}
  metrics     {base_url}/metrics
  health      {base_url}/health
  predict     curl -s -XPOST {base_url}/predict -H 'content-type: application/json' \\
                -d '{{"texts": ["质量很好，物流也快", "用了两天就坏了，要求退货"]}}'
  reports     {base_url}/reports/products   {base_url}/reports/complaints
              {base_url}/reports/alerts
  ClickHouse  embedded chdb at {settings.chdb_path}; the worker holds it while it runs.
              After stopping (Ctrl-C), query it with:
                reviewpulse report
                reviewpulse sql "SELECT product_id, sentiment, uniqExactMerge(reviews) AS n
                  FROM sentiment_minute GROUP BY product_id, sentiment
                  ORDER BY n DESC LIMIT 10"
"""
    )


def run_demo(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    base_url = f"http://{settings.web_host}:{settings.web_port}"
    run_dir = PROJECT_ROOT / ".run"
    run_dir.mkdir(exist_ok=True)
    with ExitStack() as stack:
        bootstrap = stack.enter_context(local_broker(settings))
        settings = settings.model_copy(update={"kafka_broker": bootstrap})
        env = settings_env(settings)
        worker_log = run_dir / "demo-worker.log"
        print(f"starting the worker (log {worker_log}) ...")
        worker = stack.enter_context(worker_process(env, worker_log))

        def healthy() -> bool:
            return http_get(f"{base_url}/health") is not None

        wait_for(healthy, 180, "starting", worker, worker_log)

        print(f"replaying {args.count} reviews ({args.malformed_share:.0%} malformed) ...")
        produce = [sys.executable, "-m", "stream.cli", "produce", "--count", str(args.count)]
        produce += ["--rate", str(args.rate), "--malformed-share", str(args.malformed_share)]
        subprocess.run(produce, env=env, check=True)

        started = time.monotonic()

        def accounted() -> bool:
            text = (http_get(f"{base_url}/metrics") or b"").decode()
            done = metric_total(text, "reviewpulse_events_processed")
            return done + sum(dead_letters_by_reason(text).values()) >= args.count

        wait_for(accounted, 600, "processing the replay", worker, worker_log)
        metrics_text = (http_get(f"{base_url}/metrics") or b"").decode()
        processed = metric_total(metrics_text, "reviewpulse_events_processed")
        print(
            f"\nprocessed {processed:.0f} reviews, dead-lettered "
            f"{json.dumps(dead_letters_by_reason(metrics_text), ensure_ascii=False)} "
            f"(drained {time.monotonic() - started:.1f}s after the replay finished)"
        )
        worst = http_get(f"{base_url}/reports/products?limit=5&min_reviews=5")
        if worst:
            from stream.reputation.cli import PRODUCT_TABLE
            from stream.reputation.reports import format_table

            print("\nworst products so far (GET /reports/products):")
            print(format_table(json.loads(worst)["rows"], PRODUCT_TABLE))
        print_where_to_look(settings, base_url)
        if args.exit_after_replay:
            return 0
        print("the worker keeps running; Ctrl-C stops it and the broker")
        try:
            while worker.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            print("\nstopping ...")
            return 0
        print(f"the worker exited with code {worker.returncode}; see {worker_log}")
        return worker.returncode or 1
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
    add_settings_arguments(parser)
    parser.set_defaults(func=run_demo)
