"""The stream worker end to end, in one run: ``python -m bench.stream``.

On a scratch Tansu broker and, per backend, a scratch ``clickhouse-server`` 18.16 (``native``)
or an embedded chdb directory (``embedded``), it measures, side by side:

- **model only**: ``SentimentModel.predict_cleaned`` in this process on the cleaned texts of
  the backlog, with the worker's model settings (registry version, runtime, threads, token
  limit and budget) in calls of the worker's batch size, the best of 3 rounds, measured again
  just before each backend's run;
- **end to end**: the backlog (``--events``, some malformed) is put on the input topic before
  a fresh ``reviewpulse worker`` starts; the rate is the valid reviews processed after the
  first sample that saw a row, over the time from that sample to the last row (the worker's
  ``reviewpulse_events_processed_total``: a review counts once its sentiment event was
  acknowledged and its row inserted), and its ratio to the model. The first batch's reviews
  are done before the clock starts, so they are not counted. The worker's ``/metrics`` is
  read every 50 ms until the first row (cold start to the 50 ms), then every 250 ms: a
  scrape costs its event loop milliseconds, and 20 a second took about 8% of it, where
  Prometheus scrapes every 15 s; the last row is seen at most 250 ms late, which can only
  understate the rate (by about 2% at the default backlog). The default backlog is 40,000
  events, about 10 batches of the default 4,096: at 5 batches counting the first batch
  overstated the rate by about a quarter, and two full runs differed by 17% (side by side,
  40,000 and 80,000 events gave the same rate within the noise);
- **per event**: the same worker and model with ``batch-size 1`` over ``--per-event-events``,
  and the end-to-end rate's ratio to it;
- **latency at offered rates**: on the backlog's worker, once it is idle, a paced producer
  offers each of ``--rates`` reviews/s for ``--rate-seconds``, after one untimed warm-up
  review (the producer's id, the reader's connection). A review's latency runs from
  the instant this process produced it (its ``created_at`` is that instant, to the second the
  schema keeps) to the instant this process's consumer of ``review.sentiment`` read its
  event. That is "acked" as seen from outside: the broker serves an event only once it has
  stored it, which is when it acknowledges it to the worker, so this is an upper bound on the
  worker's produce-and-ack by the consumer's fetch delay (``fetch.wait.max.ms`` 5). The
  ClickHouse row of the same batch is inserted beside it and the batch is acked after both.
  Reported: p50, p99 and max per rate, and the highest offered rate held with p99 <= 1 s;
- **CPU per review by stage**: the worker's ``reviewpulse_stage_cpu_seconds`` (thread CPU time
  in the thread that does each stage) from the last sample before any stage ran to the last
  row, per valid review;
  with the worker's whole CPU time over the same span (its process and its children: the
  model and keywords processes), the share no stage holds (the event loop's Faust and Kafka
  client work, the tokenizer's pool, the web server, passing texts to the children and
  predictions and terms back), and
  the CPU of ``clickhouse-server`` and Tansu per review;
- the **CPU budget**: all of that per review, the share of the cores the backlog kept busy,
  the rate at which every core would be busy, and the highest end-to-end / model-only ratio
  that allows (the model's core time per review, all cores at the model-only rate, over the
  whole cost): on a machine where the broker and ClickHouse share the worker's cores, the
  ratio cannot pass it however little the worker waits;
- the worker's **peak RSS** (``VmHWM``, summed over the worker and its child processes) and
  its **cold start**: launch to ``/health/ready`` answering 200, and launch to the first row;
- ``--workers N`` (server backend): N workers in one group over a backlog of the same size.

Prints a table per part and writes JSON (``--json``, default ``reports/bench/stream.json``).
The issue's targets are reported as met or not, never asserted. The machine is shared: compare
ratios from one run.

    .venv/bin/python -m bench.stream
    .venv/bin/python -m bench.stream --quick          # a smoke run, seconds of work
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.corpus import SHIPPED_CORPUS
from stream.config import PROJECT_ROOT, WorkerConfig
from stream.kafka import AckedProducer, producer_config
from stream.local.clickhouse_server import ClickHouseServer
from stream.local.processes import free_port
from stream.local.tansu import TansuBroker
from stream.local.worker import WorkerProcess, scratch_config
from stream.metrics import STAGES, read_samples, sample_total
from stream.replay import EventFactory, ReplayEvent, cycle_sources, read_corpus
from stream.sink.connection import connect

DEFAULT_JSON = PROJECT_ROOT / "reports" / "bench" / "stream.json"
BACKENDS = ("native", "embedded")
PROCESSED = "reviewpulse_events_processed_total"
STAGE_CPU = "reviewpulse_stage_cpu_seconds_total"
PROCESS_CPU = "process_cpu_seconds_total"
P99_TARGET_S = 1.0
TARGETS = {
    "end_to_end_to_model": 0.5,
    "end_to_end_to_per_event": 30.0,
    "p99_at_500_s": 1.0,
    "peak_rss_bytes": 1.5e9,
    "cold_start_ready_s": 5.0,
}
QUICK = {
    "events": 400,
    "per_event_events": 40,
    "rates": "100,300",
    "rate_seconds": 3.0,
    "workers": 2,
}
_NOT_GIVEN = object()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run_all(args)
    print_report(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\nJSON: {args.json}")
    return 0 if report["counts_match"] else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stream", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--events", type=int, default=40000, help="backlog size [40000]")
    parser.add_argument(
        "--per-event-events", type=int, default=400, help="reviews for the batch-1 run [400]"
    )
    parser.add_argument("--malformed-share", type=float, default=0.05)
    parser.add_argument(
        "--rates", default="200,500,1000", help="offered reviews/s, comma-separated"
    )
    parser.add_argument("--rate-seconds", type=float, default=10.0, help="per offered rate")
    parser.add_argument(
        "--workers", type=int, default=2, help="workers of the server-backend group run (0: skip)"
    )
    parser.add_argument("--backends", default=",".join(BACKENDS), help="native,embedded")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="the worker's batch size [its default]"
    )
    parser.add_argument(
        "--max-inflight-batches",
        type=int,
        default=None,
        help="the worker's max-inflight-batches [its default]",
    )
    parser.add_argument(
        "--keywords-executor",
        choices=("process", "thread"),
        default=None,
        help="the worker's keywords-executor [its default]",
    )
    parser.add_argument(
        "--model-executor",
        choices=("process", "thread"),
        default=None,
        help="the worker's model-executor [its default]",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: "
        + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in QUICK.items())
        + " (flags given explicitly still win)",
    )
    # Flags --quick sets parse to a marker when not given, so that one given explicitly wins
    # even when its value equals the default (``--quick --events 5000`` runs 5,000).
    defaults = {name: parser.get_default(name) for name in QUICK}
    parser.set_defaults(**dict.fromkeys(QUICK, _NOT_GIVEN))
    args = parser.parse_args(argv)
    for name, default in defaults.items():
        if getattr(args, name) is _NOT_GIVEN:
            setattr(args, name, QUICK[name] if args.quick else default)
    args.rate_list = [float(r) for r in str(args.rates).split(",") if r.strip()]
    args.backend_list = [b for b in args.backends.split(",") if b]
    unknown = set(args.backend_list) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}")
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


# --- the run ---------------------------------------------------------------------------------


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    report: dict[str, Any] = {
        "command": " ".join(["python -m bench.stream", *args.argv]),
        "quick": bool(args.quick),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="rp-bench-stream-") as scratch:
        root = Path(scratch)
        with TansuBroker(log_path=root / "tansu.log") as broker:
            base = make_config(args, broker, root, None)
            report["settings"] = settings_of(base, args)
            events = make_events(base, args.events, args.malformed_share, "backlog")
            valid = [e for e in events if e.expected_reason is None]
            for backend in args.backend_list:
                server = ClickHouseServer(root / "clickhouse") if backend == "native" else None
                if server is not None:
                    server.start()
                try:
                    report["backends"][backend] = run_backend(
                        args, broker, server, root, model_only(base, valid)
                    )
                    # The first backend's figure stands for the run (the JSON's top level).
                    report.setdefault("model_only", report["backends"][backend]["model_only"])
                    if server is not None and args.workers > 1:
                        report["workers"] = run_group(args, broker, server, root, report)
                finally:
                    if server is not None:
                        server.stop()
    report["seconds"] = round(time.monotonic() - started, 1)
    report["targets"] = targets(report)
    report["counts_match"] = counts_match(report)
    return report


def make_config(
    args: argparse.Namespace,
    broker: TansuBroker,
    root: Path,
    server: ClickHouseServer | None,
    **overrides: Any,
) -> WorkerConfig:
    if args.batch_size is not None:
        overrides.setdefault("batch_size", args.batch_size)
    if args.keywords_executor is not None:
        overrides.setdefault("keywords_executor", args.keywords_executor)
    if args.model_executor is not None:
        overrides.setdefault("model_executor", args.model_executor)
    if args.max_inflight_batches is not None:
        overrides.setdefault("max_inflight_batches", args.max_inflight_batches)
    overrides.setdefault("worker_data_dir", Path(tempfile.mkdtemp(prefix="worker-", dir=root)))
    return scratch_config(
        "bs",
        bootstrap=broker.bootstrap,
        data_dir=root,
        clickhouse=server,
        topic_partitions=args.partitions,
        **overrides,
    )


def settings_of(config: WorkerConfig, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "batch_size": config.batch.batch_size,
        "batch_within_s": config.batch.batch_within_s,
        "partitions": config.kafka.topic_partitions,
        "model_threads": config.model.model_threads,
        "model_runtime": config.model.model_runtime,
        "model_max_length": config.model.model_max_length,
        "model_token_budget": config.model.model_token_budget,
        "keywords_executor": config.batch.keywords_executor,
        "model_executor": config.batch.model_executor,
        "max_inflight_batches": config.batch.max_inflight_batches,
        "events": args.events,
        "malformed_share": args.malformed_share,
        "per_event_events": args.per_event_events,
        "rates": args.rate_list,
        "rate_seconds": args.rate_seconds,
        "workers": args.workers,
    }


def make_events(config: WorkerConfig, count: int, malformed: float, prefix: str) -> list:
    factory = event_factory(config, malformed, prefix)
    sources = cycle_sources(read_corpus(SHIPPED_CORPUS), 7)
    now = datetime.now(UTC)
    return [factory.make(next(sources), now) for _ in range(count)]


def event_factory(config: WorkerConfig, malformed: float, prefix: str) -> EventFactory:
    return EventFactory(
        seed=7,
        id_prefix=prefix,
        malformed_share=malformed,
        max_text_chars=config.batch.max_text_chars,
        max_event_bytes=config.batch.max_event_bytes,
    )


MODEL_ROUNDS = 3


def model_only(config: WorkerConfig, valid: list[ReplayEvent]) -> dict[str, Any]:
    """The served model alone, as the worker loads and calls it, on the backlog's texts (the
    best of ``MODEL_ROUNDS`` rounds). Measured again just before each backend's backlog run, so
    each end-to-end / model ratio compares figures taken minutes apart on the same machine."""
    from model.predictor import SentimentModel
    from model.registry import resolve_model_dir
    from model.text import clean_text

    m = config.model
    directory = resolve_model_dir(m.model_registry, m.model_name, m.model_version)
    model = SentimentModel.load(
        directory,
        max_length=m.model_max_length,
        threads=m.model_threads,
        runtime=m.model_runtime,
        token_budget=m.model_token_budget,
    )
    texts = [clean_text(json.loads(e.value)["text"]) for e in valid]
    size = config.batch.batch_size
    model.predict_cleaned(texts[:size])  # warm-up: first-call allocations
    rounds = []
    for _ in range(MODEL_ROUNDS):  # the best round: the model's own rate, least disturbed
        started = time.perf_counter()
        for start in range(0, len(texts), size):
            model.predict_cleaned(texts[start : start + size])
        rounds.append(time.perf_counter() - started)
    seconds = min(rounds)
    result = {
        "version": model.version,
        "runtime": model.runtime,
        "reviews": len(texts),
        "batch": size,
        "seconds": round(seconds, 3),
        "rate": round(len(texts) / seconds, 1),
    }
    print(
        f"model only: {model.version} ({model.runtime}), {len(texts)} reviews in calls of "
        f"{size}: {result['rate']:,.0f} reviews/s"
    )
    return result


def run_backend(
    args: argparse.Namespace,
    broker: TansuBroker,
    server: ClickHouseServer | None,
    root: Path,
    model: dict[str, Any],
) -> dict[str, Any]:
    """One backend: the backlog (and offered rates), the batch-1 consumer, and their ratios to
    ``model``, the model-only figure measured just before."""
    name = "native" if server is not None else "embedded"
    print(f"\n[{name}] backlog of {args.events}, then offered rates {args.rate_list}")
    config = make_config(args, broker, root, server)
    backlog = run_backlog(config, args, root / f"worker-{name}.log", broker, server, latency=True)
    print(f"[{name}] per event: batch size 1, {args.per_event_events} reviews")
    single = make_config(args, broker, root, server, batch_size=1)
    per_event = run_backlog(
        single, args, root / f"worker-{name}-1.log", broker, server, events=args.per_event_events
    )
    model_rate = model["rate"]
    held = [r["offered_rate"] for r in backlog["latency"] if r["held"]]
    return {
        "model_only": model,
        "end_to_end": {k: v for k, v in backlog.items() if k != "latency"},
        "per_event": per_event,
        "latency": backlog["latency"],
        "end_to_end_to_model": ratio(backlog["rate"], model_rate),
        "end_to_end_to_per_event": ratio(backlog["rate"], per_event["rate"]),
        "highest_rate_p99_within_1s": max(held) if held else None,
        "cpu_budget": cpu_budget(backlog.get("cpu_us_per_review", {}), backlog["rate"], model_rate),
    }


def cpu_budget(
    cpu: dict[str, Any], rate: float | None, model_rate: float, *, cores: int | None = None
) -> dict[str, Any]:
    """Whether the end-to-end rate is bound by CPU: the CPU one review costs in every process
    on the machine (the worker and its children, clickhouse-server, Tansu), the share of the
    cores the run kept busy, the rate at which they would all be busy, and the highest
    end-to-end / model-only ratio that allows: the model's own core time per review (all
    cores at the model-only rate) over the whole cost."""
    cores = cores or os.cpu_count() or 1
    parts = [cpu.get(key) for key in ("worker_process", "clickhouse_server", "broker")]
    total = sum(part for part in parts if part is not None)
    if not total or not rate or not model_rate:
        return {}
    model_core_us = cores * 1e6 / model_rate
    return {
        "all_processes_us_per_review": round(total, 1),
        "cores_busy": round(total * rate / (cores * 1e6), 3),
        "rate_at_all_cores_busy": round(cores * 1e6 / total, 1),
        "model_core_us_per_review": round(model_core_us, 1),
        "highest_ratio_cpu_allows": round(model_core_us / total, 3),
    }


def run_backlog(
    config: WorkerConfig,
    args: argparse.Namespace,
    log_path: Path,
    broker: TansuBroker,
    server: ClickHouseServer | None,
    *,
    events: int | None = None,
    latency: bool = False,
) -> dict[str, Any]:
    """A backlog put on the topic up front, a fresh worker timed over it; with ``latency``,
    the offered-rate runs follow on the same worker once the backlog is done."""
    count = args.events if events is None else events
    backlog = make_events(config, count, args.malformed_share, "backlog")
    valid = sum(e.expected_reason is None for e in backlog)
    producer = AckedProducer(config.kafka, timeout_s=60, max_message_bytes=2 * 1024 * 1024)
    producer.send(config.kafka.input_topic, [(e.key, e.value, None) for e in backlog])
    producer.close()

    watched = Watched(broker, server)
    worker = WorkerProcess(config, log_path).start()
    try:
        timing = time_backlog(worker, valid, watched)
        cpu = stage_cpu(timing)
        rates = offered_rates(config, worker, args) if latency else []
        rss = peak_rss(worker)
        code = worker.stop()
    finally:
        if worker.alive():
            worker.kill9()
    stored = count_rows(config)  # after the worker exited: chdb allows one process
    for run in rates:
        run["stored"] = stored.get(run["prefix"], 0)
    result = {
        "events": count,
        "valid": valid,
        "processed": int(timing.processed),
        "stored": stored.get("backlog", 0),
        "worker_exit_code": code,
        "seconds": round(timing.steady_s, 3),
        "rate": steady_rate(valid, timing.first_processed, timing.steady_s),
        "cold_start_ready_s": round(timing.ready_s, 2) if timing.ready_s is not None else None,
        "cold_start_first_row_s": round(timing.first_s, 2),
        "peak_rss_bytes": rss,
        "cpu_us_per_review": cpu,
    }
    if latency:
        result["latency"] = rates
    return result


def steady_rate(valid: int, first_processed: float, seconds: float) -> float | None:
    """Reviews/s after the first sample that saw a row: the reviews processed since, over the
    ``seconds`` since. A backlog done by that sample (one batch, a smoke run) has no interval
    after it: then all of it over those seconds, a figure that means nothing."""
    if seconds <= 0:
        return None
    counted = valid - first_processed if first_processed < valid else valid
    return round(counted / seconds, 1)


@dataclass
class Timing:
    launched: float
    ready_s: float | None = None
    first_s: float = 0.0
    steady_s: float = 0.0
    processed: float = 0.0
    first_processed: float = 0.0  # processed at the first row's sample: not in steady_s
    first_metrics: str = ""
    last_metrics: str = ""
    first_at: float = 0.0
    done_at: float = 0.0
    services_first: dict[str, float | None] | None = None
    services_last: dict[str, float | None] | None = None
    worker_tree_first: float | None = None  # CPU s of the worker and its children
    worker_tree_last: float | None = None


START_POLL_S = 0.05  # until the first row: the cold start's resolution
STEADY_POLL_S = 0.25  # then: a scrape is event-loop time the worker would otherwise use


def time_backlog(
    worker: WorkerProcess, valid: int, watched: Watched, timeout_s: float = 900
) -> Timing:
    """Poll the worker until every valid review of the backlog is processed."""
    timing = Timing(launched=time.monotonic())
    deadline = timing.launched + timeout_s
    first_seen = None
    while True:
        if not worker.alive():
            raise RuntimeError(f"the worker exited during the run:\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done in {timeout_s:.0f}s:\n{worker.log_tail()}")
        now = time.monotonic()
        if timing.ready_s is None and ready(worker):
            timing.ready_s = now - timing.launched
        try:
            text = worker.metrics_text()
        except OSError:
            time.sleep(0.05)
            continue
        processed = sample_total(text, PROCESSED)
        if sample_total(text, STAGE_CPU) == 0:  # the CPU baseline: no stage has run yet
            timing.first_metrics = text
            timing.services_first = watched.sample()
            timing.worker_tree_first = process_cpu_s(pid_of(worker))
        if first_seen is None and processed > 0:
            first_seen = now
            timing.first_s = now - timing.launched
            timing.first_at = now
            timing.first_processed = processed
        if processed >= valid:
            timing.done_at = time.monotonic()
            timing.steady_s = timing.done_at - timing.first_at
            timing.processed = processed
            timing.last_metrics = text
            timing.services_last = watched.sample()
            timing.worker_tree_last = process_cpu_s(pid_of(worker))
            break
        time.sleep(STEADY_POLL_S if first_seen is not None else START_POLL_S)
    while timing.ready_s is None and time.monotonic() < deadline:  # ready after the backlog
        if ready(worker):
            timing.ready_s = time.monotonic() - timing.launched
        else:
            time.sleep(0.05)
    return timing


def ready(worker: WorkerProcess) -> bool:
    try:
        status, _ = worker.get_json("/health/ready")
    except (OSError, ValueError):
        return False
    return status == 200


class Watched:
    """CPU seconds of the broker and clickhouse-server processes, from /proc."""

    def __init__(self, broker: TansuBroker, server: ClickHouseServer | None) -> None:
        self.pids = {"broker": pid_of(broker), "clickhouse_server": pid_of(server)}

    def sample(self) -> dict[str, float | None]:
        return {name: process_cpu_s(pid) for name, pid in self.pids.items()}


def pid_of(service: Any) -> int | None:
    process = getattr(service, "process", None)
    return None if process is None else process.pid


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of ``pid`` and its live descendants (Linux; a launcher may
    run the service as its child), None when unknown."""
    if pid is None:
        return None
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu seconds)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12])
        stats[int(entry.name)] = (int(fields[1]), ticks / os.sysconf("SC_CLK_TCK"))
    if pid not in stats:
        return None
    tree, total, grew = {pid}, 0.0, True
    while grew:
        grew = False
        for child, (parent, _) in stats.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grew = True
    for member in tree:
        total += stats[member][1]
    return total


def stage_cpu(timing: Timing) -> dict[str, Any]:
    """µs of CPU per valid review from before the first batch (the last metrics sample in
    which no stage had run) to the last row, by stage, of the worker (and of the broker and
    clickhouse-server processes over the same span)."""
    first, last = timing.first_metrics, timing.last_metrics
    reviews = sample_total(last, PROCESSED) - sample_total(first, PROCESSED)
    if reviews <= 0:
        return {}

    def per_review(seconds: float) -> float:
        return round(1e6 * seconds / reviews, 1)

    before, after = read_samples(first, STAGE_CPU), read_samples(last, STAGE_CPU)
    stages = {
        stage: per_review(
            after.get((("stage", stage),), 0.0) - before.get((("stage", stage),), 0.0)
        )
        for stage in STAGES
    }
    if timing.worker_tree_first is not None and timing.worker_tree_last is not None:
        worker = timing.worker_tree_last - timing.worker_tree_first  # with its children
    else:
        worker = sample_total(last, PROCESS_CPU) - sample_total(first, PROCESS_CPU)
    staged = sum(stages.values())
    result: dict[str, Any] = {
        "reviews": int(reviews),
        "stages": stages,
        "stages_total": round(staged, 1),
        "worker_process": per_review(worker),
        "worker_not_in_a_stage": round(per_review(worker) - staged, 1),
    }
    for name, begun in (timing.services_first or {}).items():
        ended = (timing.services_last or {}).get(name)
        if begun is not None and ended is not None:
            result[name] = per_review(ended - begun)
    return result


def peak_rss(worker: WorkerProcess) -> int | None:
    """The peak resident set (VmHWM) of the worker and of each of its child processes (the
    keywords process, multiprocessing's resource tracker), summed, bytes: at least what they
    held at any one time."""
    assert worker.process is not None
    peaks = [vm_hwm(pid) for pid in process_tree(worker.process.pid)]
    if not peaks or peaks[0] is None:
        return None
    return sum(peak for peak in peaks if peak is not None)


def vm_hwm(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants, ``pid`` first (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    tree = [pid]
    for member in tree:  # grows while it is walked
        tree += [child for child, parent in parents.items() if parent == member]
    return tree


def count_rows(config: WorkerConfig) -> dict[str, int]:
    """Rows in ``reviews`` (FINAL) by review_id prefix (``backlog``, ``rate500``...)."""
    ch = connect(config.clickhouse)
    try:
        rows = ch.query(
            "SELECT splitByChar('-', review_id)[1] AS prefix, count() FROM reviews FINAL "
            "GROUP BY prefix"
        )
    finally:
        ch.close()
    return {str(prefix): int(n) for prefix, n in rows}


# --- latency at offered rates ----------------------------------------------------------------


class OutputReader:
    """Reads ``review.sentiment`` from the beginning of every partition on its own thread and
    notes, per review_id, when its event was first read (``time.time()``)."""

    def __init__(self, config: WorkerConfig) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": config.kafka.kafka_broker,
                "group.id": f"{config.kafka.app_id}-bench-reader",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
                "fetch.min.bytes": 1,
            }
        )
        topic = config.kafka.output_topic
        self._consumer.assign(
            [
                TopicPartition(topic, p, OFFSET_BEGINNING)
                for p in range(config.kafka.topic_partitions)
            ]
        )
        self._thread = threading.Thread(target=self._run, name="bench-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._consumer.poll(0.05)
            if message is None or message.error() is not None:
                continue
            at = time.time()
            review_id = json.loads(message.value())["review_id"]
            self.seen.setdefault(review_id, at)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


def offered_rates(
    config: WorkerConfig, worker: WorkerProcess, args: argparse.Namespace
) -> list[dict[str, Any]]:
    from confluent_kafka import Producer

    reader = OutputReader(config)
    producer = Producer(producer_config(config.kafka))
    results = []
    try:
        warm_up(config, producer, reader, worker)
        for rate in args.rate_list:
            results.append(offer(rate, config, producer, reader, worker, args.rate_seconds))
    finally:
        producer.flush(30)
        reader.close()
    return results


def warm_up(
    config: WorkerConfig,
    producer: Any,
    reader: OutputReader,
    worker: WorkerProcess,
    timeout_s: float = 30.0,
) -> None:
    """One review through the worker before any rate is timed. An idempotent producer's first
    delivery waits for its producer id (1.0 s on Tansu), and the reader's first fetch for its
    connection: untimed, that wait would count as the worker's latency of the first reviews
    offered."""
    event = event_factory(config, 0.0, "warmup").make(
        next(cycle_sources(read_corpus(SHIPPED_CORPUS), 0)), datetime.now(UTC)
    )
    producer.produce(config.kafka.input_topic, event.value, event.key)
    producer.flush(timeout_s)
    review_id = json.loads(event.value)["review_id"]
    deadline = time.time() + timeout_s
    while review_id not in reader.seen:
        if not worker.alive() or time.time() > deadline:
            raise RuntimeError(f"the warm-up review did not come out:\n{worker.log_tail()}")
        time.sleep(0.05)


def offer(
    rate: float,
    config: WorkerConfig,
    producer: Any,
    reader: OutputReader,
    worker: WorkerProcess,
    seconds: float,
) -> dict[str, Any]:
    """``rate`` reviews/s for ``seconds``, paced; then wait for every event to come out."""
    prefix = f"rate{int(rate)}"
    factory = event_factory(config, 0.0, prefix)
    sources = cycle_sources(read_corpus(SHIPPED_CORPUS), int(rate))
    sent: dict[str, float] = {}
    total = max(1, int(rate * seconds))
    started = time.time()
    for i in range(total):
        ahead = started + i / rate - time.time()
        if ahead > 0.001:
            time.sleep(ahead)
        now = time.time()
        event = factory.make(next(sources), datetime.fromtimestamp(now, UTC))
        producer.produce(config.kafka.input_topic, event.value, event.key)
        sent[json.loads(event.value)["review_id"]] = now
        producer.poll(0)
    producer.flush(30)
    offered_s = time.time() - started
    deadline = time.time() + max(30.0, 3 * seconds)
    while time.time() < deadline and not all(r in reader.seen for r in sent):
        if not worker.alive():
            raise RuntimeError(f"the worker exited during the rate runs:\n{worker.log_tail()}")
        time.sleep(0.1)
    latencies = sorted(reader.seen[r] - at for r, at in sent.items() if r in reader.seen)
    received = len(latencies)
    result: dict[str, Any] = {
        "offered_rate": rate,
        "prefix": prefix,
        "sent": len(sent),
        "received": received,
        "achieved_offered_rate": round(len(sent) / offered_s, 1),
        "p50_s": round(quantile(latencies, 0.5), 4) if latencies else None,
        "p99_s": round(quantile(latencies, 0.99), 4) if latencies else None,
        "max_s": round(latencies[-1], 4) if latencies else None,
    }
    result["held"] = bool(
        received == len(sent) and result["p99_s"] is not None and result["p99_s"] <= P99_TARGET_S
    )
    print(
        f"  offered {rate:,.0f}/s: {received}/{len(sent)} out, p50 {result['p50_s']} s, "
        f"p99 {result['p99_s']} s, max {result['max_s']} s"
    )
    return result


def quantile(ordered: list[float], q: float) -> float:
    """The nearest-rank quantile of sorted values."""
    index = min(len(ordered) - 1, max(0, int(-(-q * len(ordered) // 1)) - 1))
    return ordered[index]


# --- N workers -------------------------------------------------------------------------------


def run_group(
    args: argparse.Namespace,
    broker: TansuBroker,
    server: ClickHouseServer,
    root: Path,
    report: dict[str, Any],
) -> dict[str, Any]:
    """``--workers`` workers in one group, server backend: once every member answers
    ``/health/ready`` (the group has settled), a backlog of ``--events`` goes on the topic and
    the rate is timed from the first row to the last (rows of the first sample not counted)."""
    n = args.workers
    print(f"\n[native] {n} workers in one group over {args.events}")
    config = make_config(args, broker, root, server)
    backlog = make_events(config, args.events, args.malformed_share, "group")
    valid = sum(e.expected_reason is None for e in backlog)
    workers = [
        WorkerProcess(
            config.replace(web_port=free_port(), worker_data_dir=root / f"group-{i}"),
            root / f"group-{i}.log",
        )
        for i in range(n)
    ]
    for worker in workers:
        worker.start()
    try:
        settle_deadline = time.monotonic() + 300
        while not all(ready(w) for w in workers):
            if time.monotonic() > settle_deadline or not all(w.alive() for w in workers):
                raise RuntimeError(f"the group did not settle:\n{workers[0].log_tail()}")
            time.sleep(0.2)
        producer = AckedProducer(config.kafka, timeout_s=60, max_message_bytes=2 * 1024 * 1024)
        producer.send(config.kafka.input_topic, [(e.key, e.value, None) for e in backlog])
        producer.close()
        launched = time.monotonic()
        first_at = None
        first_processed = 0.0  # the rows of the first sample: done before first_at
        while True:
            for worker in workers:
                if not worker.alive():
                    raise RuntimeError(f"a worker exited:\n{worker.log_tail()}")
            processed = sum(group_processed(w) for w in workers)
            now = time.monotonic()
            if first_at is None and processed > 0:
                first_at = now
                first_processed = processed
            if processed >= valid:
                done_at = now
                break
            if now - launched > 900:
                raise TimeoutError("the group did not finish in 900 s")
            time.sleep(0.05)
        codes = [w.stop() for w in workers]
    finally:
        for worker in workers:
            if worker.alive():
                worker.kill9()
    assert first_at is not None
    steady = done_at - first_at
    one = report["backends"]["native"]["end_to_end"]["rate"]
    rate = steady_rate(valid, first_processed, steady)
    result = {
        "workers": n,
        "backend": "native",
        "events": args.events,
        "valid": valid,
        "processed": int(processed),
        "stored": count_rows(config).get("group", 0),
        "worker_exit_codes": codes,
        "seconds": round(steady, 3),
        "rate": rate,
        "to_one_worker": ratio(rate, one),
    }
    print(f"  {n} workers: {rate} reviews/s ({result['to_one_worker']}x one worker)")
    return result


def group_processed(worker: WorkerProcess) -> float:
    try:
        return sample_total(worker.metrics_text(), PROCESSED)
    except OSError:
        return 0.0


# --- report ----------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """Each target of issue 12 per backend: the figure, the target and whether it was met."""
    out: dict[str, Any] = {}
    for name, b in report["backends"].items():
        at_500 = next((r for r in b["latency"] if r["offered_rate"] == 500), None)
        figures = {
            "end_to_end_to_model": (b["end_to_end_to_model"], ">="),
            "end_to_end_to_per_event": (b["end_to_end_to_per_event"], ">="),
            "p99_at_500_s": (at_500["p99_s"] if at_500 else None, "<="),
            "peak_rss_bytes": (b["end_to_end"]["peak_rss_bytes"], "<="),
            "cold_start_ready_s": (b["end_to_end"]["cold_start_ready_s"], "<="),
        }
        out[name] = {
            key: {
                "value": value,
                "target": f"{sense} {TARGETS[key]:g}",
                "met": None
                if value is None
                else (value >= TARGETS[key] if sense == ">=" else value <= TARGETS[key]),
            }
            for key, (value, sense) in figures.items()
        }
    return out


def counts_match(report: dict[str, Any]) -> bool:
    runs = []
    for b in report["backends"].values():
        runs += [b["end_to_end"], b["per_event"]]
        runs += [{"valid": r["sent"], "stored": r["received"]} for r in b["latency"]]
        runs += [{"valid": r["sent"], "stored": r["stored"]} for r in b["latency"]]
    if "workers" in report:
        runs.append(report["workers"])
    return all(r["valid"] == r["stored"] for r in runs)


def print_report(report: dict[str, Any]) -> None:
    model = report["model_only"]
    names = list(report["backends"])
    print(f"\n{report['command']}  ({report['cpus']} CPUs, {report['seconds']} s)")
    print(f"settings: {report['settings']}")
    rows: list[tuple[str, list[str]]] = [
        (
            "model only (reviews/s)",
            [f"{report['backends'][n].get('model_only', model)['rate']:,.0f}" for n in names],
        ),
    ]

    def each(get: Any, fmt: str = "{}") -> list[str]:
        out = []
        for name in names:
            try:
                value = get(report["backends"][name])
            except (KeyError, TypeError, StopIteration):
                value = None
            out.append("-" if value is None else fmt.format(value))
        return out

    rows += [
        ("end to end (reviews/s)", each(lambda b: b["end_to_end"]["rate"], "{:,.0f}")),
        ("  / model only", each(lambda b: b["end_to_end_to_model"], "{:.0%}")),
        ("per event, batch 1 (reviews/s)", each(lambda b: b["per_event"]["rate"], "{:,.1f}")),
        ("  end to end / per event", each(lambda b: b["end_to_end_to_per_event"], "{:.1f}x")),
    ]
    for rate in report["settings"]["rates"]:

        def at(b: dict, key: str, rate: float = rate) -> Any:
            return next(r for r in b["latency"] if r["offered_rate"] == rate)[key]

        rows.append(
            (
                f"latency at {rate:,.0f}/s p50 / p99 / max (s)",
                each(
                    lambda b, at=at: (
                        f"{at(b, 'p50_s'):.3f} / {at(b, 'p99_s'):.3f} / {at(b, 'max_s'):.3f}"
                    )
                ),
            )
        )
    rows += [
        (
            "highest offered rate, p99 <= 1 s",
            each(lambda b: b["highest_rate_p99_within_1s"], "{:,.0f}"),
        ),
        (
            "peak RSS (MB)",
            each(lambda b: b["end_to_end"]["peak_rss_bytes"] / 1e6, "{:,.0f}"),
        ),
        (
            "cold start to ready (s)",
            each(lambda b: b["end_to_end"]["cold_start_ready_s"], "{:.1f}"),
        ),
        (
            "cold start to first row (s)",
            each(lambda b: b["end_to_end"]["cold_start_first_row_s"], "{:.1f}"),
        ),
        ("CPU µs per review, by stage", [""] * len(names)),
    ]
    for stage in STAGES:
        rows.append(
            (
                f"  {stage}",
                each(
                    lambda b, s=stage: b["end_to_end"]["cpu_us_per_review"]["stages"][s], "{:,.0f}"
                ),
            )
        )
    for label, key in (
        ("  all stages", "stages_total"),
        ("  worker process", "worker_process"),
        ("  worker, not in a stage", "worker_not_in_a_stage"),
        ("  clickhouse-server", "clickhouse_server"),
        ("  broker (Tansu)", "broker"),
    ):
        rows.append(
            (label, each(lambda b, k=key: b["end_to_end"]["cpu_us_per_review"][k], "{:,.0f}"))
        )
    rows += [
        ("CPU budget", [""] * len(names)),
        (
            "  all processes, µs per review",
            each(lambda b: b["cpu_budget"]["all_processes_us_per_review"], "{:,.0f}"),
        ),
        ("  cores busy", each(lambda b: b["cpu_budget"]["cores_busy"], "{:.0%}")),
        (
            "  reviews/s at all cores busy",
            each(lambda b: b["cpu_budget"]["rate_at_all_cores_busy"], "{:,.0f}"),
        ),
        (
            "  highest / model only it allows",
            each(lambda b: b["cpu_budget"]["highest_ratio_cpu_allows"], "{:.0%}"),
        ),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"\n| {'':<{width}} | " + " | ".join(f"{n:>16}" for n in names) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * 18 for _ in names) + "|")
    for label, values in rows:
        print(f"| {label:<{width}} | " + " | ".join(f"{v:>16}" for v in values) + " |")
    if "workers" in report:
        w = report["workers"]
        print(
            f"\n{w['workers']} workers, server backend: {w['rate']} reviews/s "
            f"({w['to_one_worker']}x one worker), {w['stored']}/{w['valid']} stored"
        )
    print("\ntargets (issue 12, not asserted):")
    for name, checks in report["targets"].items():
        for key, check in checks.items():
            verdict = {True: "met", False: "NOT met", None: "not measured"}[check["met"]]
            print(f"  {name:<9} {key:<24} {check['value']} ({check['target']}): {verdict}")
    print(f"counts match: {report['counts_match']}")


if __name__ == "__main__":
    sys.exit(main())
