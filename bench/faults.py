"""The fault suite: a stream under faults, with nothing lost and nothing counted twice.

Each row runs on its own topics, consumer group and database, on a real Tansu broker and a
real clickhouse-server, with a supervised fleet of workers (``stream.local.fleet``: a worker
that exits is started again, as an orchestrator would). Events (``--malformed-share`` of them
bad, one of every dead-letter reason in turn, from ``stream.replay.EventFactory``) are
produced at ``--rate`` while the fault happens; then the suite waits until the group has
committed every offset, stops the fleet and counts:

- valid stored: valid reviews in ``reviews FINAL``; lost: valid reviews not there;
- double-counted: reviews counted more than once in the per-minute aggregates
  (``sentiment_minute`` per minute and product, ``traffic_minute`` per minute and category,
  against ``reviews FINAL``); short: reviews the aggregates miss;
- dead letters: bad events in the DLQ with the reason the generator expects;
- max RSS: the highest peak RSS (VmHWM) of any worker process;
- recovery: from the fault (for an outage: from the service's return) until every partition
  that had input left is committed past where it stood.

The broker rows run a Tansu of their own on moto's S3 server and restart it at 40%:
``broker_restart`` gracefully (SIGTERM, wait for the exit), ``broker_kill9`` with SIGKILL.
``python -m bench.broker_restart`` is their control, with no ReviewPulse code in it.

    .venv/bin/python -m bench.faults                       # 2 workers, 20,000 events a row
    .venv/bin/python -m bench.faults --events 4000 --faults none,sigterm
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from model.corpus import SHIPPED_CORPUS
from stream.config import PROJECT_ROOT, KafkaConfig, WorkerConfig
from stream.kafka import ensure_topics, producer_config
from stream.local.clickhouse_server import ClickHouseServer
from stream.local.fleet import WorkerFleet
from stream.local.s3 import INSTALL_HINT, S3Server, s3_server_available
from stream.local.tansu import TansuBroker
from stream.local.worker import scratch_config
from stream.replay import EventFactory, ReplayEvent, cycle_sources, read_corpus
from stream.sink.backend import ClickHouse
from stream.sink.connection import connect
from stream.sink.migrations import migrate

FAULTS = (
    "none",
    "kill9",
    "sigterm",
    "join_leave",
    "clickhouse_down",
    "broker_restart",
    "broker_kill9",
    "flood",
)
BROKER_FAULTS = ("broker_restart", "broker_kill9")  # a Tansu of their own on an S3 server
DEFAULT_OUT = PROJECT_ROOT / "reports" / "faults.json"


@dataclass
class Row:
    """One fault's outcome (one line of the table)."""

    fault: str
    events: int = 0
    valid: int = 0
    stored: int = 0
    lost: int = 0
    double_counted: int = 0
    aggregates_short: int = 0
    malformed: int = 0
    dead_letters_right: int = 0
    max_rss_mb: float = 0.0
    recovery_s: float | None = None
    drain_s: float = 0.0
    restarts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # per fault, for tests and JSON
    notes: list[str] = field(default_factory=list)
    skipped: str = ""  # could not run here (e.g. no S3 server for the broker)
    failed: str = ""  # the run itself broke (e.g. the group never drained)

    @property
    def meets_target(self) -> bool:
        return (
            not self.skipped
            and not self.failed
            and (
                self.lost == 0
                and self.double_counted == 0
                and self.aggregates_short == 0
                and self.stored == self.valid
                and self.dead_letters_right == self.malformed
            )
        )


@dataclass
class Services:
    broker: TansuBroker
    server: ClickHouseServer
    root: Path


# events -------------------------------------------------------------------------------------


def make_events(count: int, *, seed: int, malformed_share: float, config: WorkerConfig):
    """``count`` replay events, created 0.5 s apart ending about an hour ago."""
    factory = EventFactory(
        seed=seed,
        id_prefix=f"f{seed}",
        malformed_share=malformed_share,
        max_text_chars=config.batch.max_text_chars,
        max_event_bytes=config.batch.max_event_bytes,
    )
    sources = cycle_sources(read_corpus(SHIPPED_CORPUS), seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1, seconds=count / 2)
    return [factory.make(next(sources), start + timedelta(seconds=i / 2)) for i in range(count)]


class Feeder:
    """Produces events at ``rate`` per second on a thread and records, per partition, the
    offset after the last record the broker acknowledged (Tansu's own end offsets can be
    short: defect A)."""

    def __init__(self, kafka: KafkaConfig, events: list[ReplayEvent], rate: float) -> None:
        from confluent_kafka import Producer

        self.topic = kafka.input_topic
        self.events = events
        self.rate = rate
        self.sent = 0
        self.ends: dict[int, int] = {}
        self.errors: list[str] = []
        # Delivered with no offset: an idempotent producer's retry of a batch the broker
        # already had (after a broker crash). The record is stored; its offset is unknown.
        self.unknown_offsets = 0
        settings = producer_config(kafka, max_message_bytes=2 * 1024 * 1024)
        self._producer = Producer({**settings, "message.timeout.ms": 600_000})
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="feeder", daemon=True)

    def start(self) -> Feeder:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def progress(self) -> float:
        return self.sent / len(self.events)

    def end_offsets(self) -> dict[int, int]:
        with self._lock:
            return dict(self.ends)

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"the feeder did not finish in {timeout_s:.0f}s")
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} events not delivered: {self.errors[0]}")
        if self.sent < len(self.events):  # the thread died (its traceback is on stderr)
            raise RuntimeError(f"the feeder stopped after {self.sent} of {len(self.events)}")

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self.errors.append(str(error))
            return
        offset = message.offset()
        if offset is None or offset < 0:
            self.unknown_offsets += 1
            return
        with self._lock:
            partition = message.partition()
            self.ends[partition] = max(self.ends.get(partition, 0), offset + 1)

    def _run(self) -> None:
        started = time.monotonic()
        for index, event in enumerate(self.events):
            due = started + index / self.rate
            while (wait := due - time.monotonic()) > 0:
                self._producer.poll(min(wait, 0.05))
            while True:
                try:
                    self._producer.produce(
                        self.topic, event.value, event.key, on_delivery=self._delivered
                    )
                    break
                except BufferError:
                    self._producer.poll(0.05)
            self.sent = index + 1
            self._producer.poll(0)
        while self._producer.flush(1.0):
            pass


class Commits:
    """The group's committed offsets on the input topic, read without joining the group."""

    def __init__(self, kafka: KafkaConfig) -> None:
        from confluent_kafka import Consumer

        self.kafka = kafka
        self._consumer = Consumer(
            {"bootstrap.servers": kafka.kafka_broker, "group.id": kafka.app_id}
        )

    def read(self) -> dict[int, int] | None:
        """Partition -> committed offset (0 when none yet); None while the broker is away."""
        from confluent_kafka import TopicPartition

        topic = self.kafka.input_topic
        try:
            parts = [TopicPartition(topic, p) for p in range(self.kafka.topic_partitions)]
            committed = self._consumer.committed(parts, timeout=5)
        except Exception:  # the broker is restarting: try again later
            return None
        return {tp.partition: max(tp.offset, 0) for tp in committed}

    def close(self) -> None:
        self._consumer.close()


def wait_recovered(commits: Commits, feeder: Feeder, base: dict[int, int], since: float) -> float:
    """Seconds from ``since`` until every partition that had input left past ``base`` is
    committed past it (at most 300 s)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        now = commits.read()
        ends = feeder.end_offsets()
        if now is not None and all(
            now.get(p, 0) > offset or now.get(p, 0) >= ends.get(p, 0) for p, offset in base.items()
        ):
            return time.monotonic() - since
        time.sleep(0.25)
    raise TimeoutError("the group did not recover within 300 s")


def wait_drained(commits: Commits, feeder: Feeder, timeout_s: float) -> None:
    """Until the group has committed every offset the feeder produced."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now, ends = commits.read(), feeder.end_offsets()
        if feeder.done and now is not None and all(now.get(p, 0) >= e for p, e in ends.items()):
            return
        time.sleep(0.5)
    raise TimeoutError(f"not every offset committed after {timeout_s:.0f}s: {commits.read()}")


def at_progress(feeder: Feeder, share: float) -> None:
    while feeder.progress() < share and not feeder.done:
        time.sleep(0.02)


# faults -------------------------------------------------------------------------------------


@dataclass
class Run:
    """What a fault needs: the fleet, the feeder and the committed offsets of one row."""

    fleet: WorkerFleet
    feeder: Feeder
    commits: Commits
    services: Services
    row: Row
    outage_s: float
    recoveries: list[float] = field(default_factory=list)

    def base(self) -> dict[int, int]:
        while (now := self.commits.read()) is None:
            time.sleep(0.25)
        return now

    def recovered_since(self, since: float, base: dict[int, int]) -> None:
        self.recoveries.append(wait_recovered(self.commits, self.feeder, base, since))


def fault_none(run: Run) -> None:
    """The control: the same stream with no fault."""


def fault_kill9(run: Run) -> None:
    """kill -9 of a worker three times (alternating members), each mid-stream."""
    for step, share in enumerate((0.2, 0.45, 0.7)):
        at_progress(run.feeder, share)
        member = run.fleet.members[step % len(run.fleet.members)]
        base, since = run.base(), time.monotonic()
        run.fleet.kill9(member)
        run.recovered_since(since, base)


def fault_sigterm(run: Run) -> None:
    """SIGTERM to a worker while it has a batch in hand (exit 75: not acked, re-read). The
    worker is paused for 2 s first, so a backlog keeps it busy with full batches."""
    at_progress(run.feeder, 0.4)
    member = run.fleet.members[0]
    run.fleet.pause(member, 2.0)
    deadline = time.monotonic() + 30
    while not (in_batch := run.fleet.in_batch(member)) and time.monotonic() < deadline:
        time.sleep(0.005)
    run.row.details["signalled_in_batch"] = in_batch
    process = member.worker.process  # the supervisor replaces it after the exit
    assert process is not None
    base, since = run.base(), time.monotonic()
    run.fleet.terminate(member)
    code = process.wait(timeout=60)
    run.recovered_since(since, base)
    run.row.details["sigterm_exit"] = code
    outcome = {75: "batch cancelled, not acked", 0: "batch in hand finished, then stopped"}
    run.row.notes.append(
        f"SIGTERM {'with' if in_batch else 'without'} a batch in hand: exit {code} "
        f"({outcome.get(code, 'unexpected')})"
    )


def fault_join_leave(run: Run) -> None:
    """A third worker joins at 15% and, once it has taken partitions and processed events,
    leaves (SIGTERM) at 65% or later: two rebalances. Recovery is the leave's; the join is
    measured from launch to the third worker's first processed events (model load included)."""
    at_progress(run.feeder, 0.15)
    launched = time.monotonic()
    third = run.fleet.add()
    deadline = launched + 90
    while run.fleet.counters(third).get("processed", 0.0) == 0 and time.monotonic() < deadline:
        time.sleep(0.25)
    serving_s = time.monotonic() - launched
    at_progress(run.feeder, 0.65)
    consumed = run.fleet.counters(third).get("consumed", 0.0)
    feed_ended = run.feeder.done
    base, since = run.base(), time.monotonic()
    run.fleet.retire(third)
    run.recovered_since(since, base)
    run.row.details.update(third_serving_s=serving_s, third_consumed=consumed)
    run.row.notes.append(
        f"third worker processed events {serving_s:.1f} s after launch, consumed "
        f"{consumed:.0f} before leaving" + (" (after the feed ended)" if feed_ended else "")
    )


def fault_clickhouse_down(run: Run) -> None:
    """The ClickHouse server stops at 30% for ``outage_s`` and starts again (same data)."""
    at_progress(run.feeder, 0.3)
    server = run.services.server
    server.stop()
    time.sleep(run.outage_s)
    base = run.base()
    server.start()
    run.recovered_since(time.monotonic(), base)
    run.row.notes.append(f"ClickHouse down {run.outage_s:.0f} s; recovery from its return")


def fault_broker_restart(run: Run, *, hard: bool = False) -> None:
    """The broker (on an S3 server: durable) stops at 40% and starts again on the same port
    and storage: gracefully (SIGTERM, and wait for the exit), or with ``hard`` a SIGKILL."""
    at_progress(run.feeder, 0.4)
    stop_s = run.services.broker.halt(hard=hard)
    run.services.broker.start()
    returned = time.monotonic()
    run.recovered_since(returned, run.base())  # the commits as the broker kept them
    run.row.details["broker_stop_s"] = stop_s
    how = "SIGKILL" if hard else f"SIGTERM, exited after {stop_s:.1f} s"
    run.row.notes.append(f"Tansu on moto S3, {how}; recovery from the broker's return")


def fault_broker_kill9(run: Run) -> None:
    """``broker_restart`` with a SIGKILL: the broker crashes mid-stream."""
    fault_broker_restart(run, hard=True)


def fault_flood(run: Run) -> None:
    """16 clients post 64 texts each to every worker's /predict, back to back, while the
    stream runs; the drain time compares with the control row."""
    texts = [event.value.decode(errors="replace")[:200] for event in run.feeder.events[:64]]
    body = json.dumps({"texts": texts}).encode()
    statuses: Counter = Counter()
    stop = threading.Event()

    def client(index: int) -> None:
        while not stop.is_set():
            live = run.fleet.live()
            if not live:
                time.sleep(0.1)
                continue
            member = live[index % len(live)]
            request = urllib.request.Request(member.worker.url("/predict"), data=body)
            request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    statuses[response.status] += 1
            except urllib.error.HTTPError as error:
                statuses[error.code] += 1
            except OSError:
                statuses["error"] += 1
                time.sleep(0.1)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(16)]
    for thread in threads:
        thread.start()
    run.feeder.join(timeout_s=3600)
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=40)
    run.row.notes.append("/predict: " + ", ".join(f"{k}: {v}" for k, v in statuses.items()))


FAULT_STEPS: dict[str, Callable[[Run], None]] = {
    "none": fault_none,
    "kill9": fault_kill9,
    "sigterm": fault_sigterm,
    "join_leave": fault_join_leave,
    "clickhouse_down": fault_clickhouse_down,
    "broker_restart": fault_broker_restart,
    "broker_kill9": fault_broker_kill9,
    "flood": fault_flood,
}


# outcome ------------------------------------------------------------------------------------


def read_dead_letters(kafka: KafkaConfig, idle_s: float = 3.0) -> list[dict]:
    """Every record of the DLQ topic, from the beginning, until ``idle_s`` brings nothing."""
    return [json.loads(value) for value in read_topic(kafka, kafka.dlq_topic, idle_s)]


def read_topic(kafka: KafkaConfig, topic: str, idle_s: float = 3.0) -> list[bytes]:
    """Every record value of ``topic``, from the beginning, until ``idle_s`` brings nothing."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": kafka.kafka_broker,
            "group.id": f"faults-read-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        values, last = [], time.monotonic()
        while time.monotonic() - last < idle_s:
            batch = consumer.consume(1000, timeout=0.2)
            values += [m.value() for m in batch if m.error() is None]
            if batch:
                last = time.monotonic()
        return values
    finally:
        consumer.close()


def aggregate_drift(ch: ClickHouse) -> tuple[int, int]:
    """(reviews counted more than once, reviews missing) in the per-minute aggregates,
    against ``reviews FINAL``: ``sentiment_minute`` per minute and product and
    ``traffic_minute`` per minute and category, summed over their other key columns (a
    review counted under two sentiments counts twice)."""
    double = short = 0
    for table, key in (("sentiment_minute", "product_id"), ("traffic_minute", "category")):
        want = dict(
            ((str(minute), k), n)
            for minute, k, n in ch.query(
                f"SELECT toStartOfMinute(created_at) AS m, {key}, count() FROM reviews FINAL "
                f"GROUP BY m, {key}"
            )
        )
        got: Counter = Counter()
        for minute, k, n in ch.query(
            f"SELECT minute, {key}, uniqExactMerge(reviews) FROM {table} "
            f"GROUP BY minute, {key}, {aggregate_other_keys(table)}"
        ):
            got[(str(minute), k)] += n
        for cell in set(want) | set(got):
            difference = got.get(cell, 0) - want.get(cell, 0)
            double += max(difference, 0)
            short += max(-difference, 0)
    return double, short


def aggregate_other_keys(table: str) -> str:
    return {
        "sentiment_minute": "category, sentiment, rating",
        "traffic_minute": "model_version, sentiment, confidence_bin, length_bin",
    }[table]


def count_outcome(config: WorkerConfig, events: list[ReplayEvent], row: Row) -> None:
    topic_in = config.kafka.input_topic
    valid = {e.review_id for e in events if e.expected_reason is None}
    malformed = {e.value_sha256: e.expected_reason for e in events if e.expected_reason}
    ch = connect(config.clickhouse)
    try:
        stored = {r[0] for r in ch.query("SELECT review_id FROM reviews FINAL")}
        row.double_counted, row.aggregates_short = aggregate_drift(ch)
    finally:
        ch.close()
    row.valid, row.malformed = len(valid), len(malformed)
    row.stored = len(stored & valid)
    row.lost = len(valid - stored)
    if stored - valid:
        row.notes.append(f"{len(stored - valid)} stored reviews not sent")
    reasons: dict[str, set[str]] = {}
    for letter in read_dead_letters(config.kafka):
        digest = hashlib.sha256(base64.b64decode(letter["value_b64"])).hexdigest()
        reasons.setdefault(digest, set()).add(letter["reason"])
    row.dead_letters_right = sum(
        1 for digest, reason in malformed.items() if reasons.get(digest) == {reason}
    )
    wrong = Counter(
        f"{reason}->{'/'.join(sorted(reasons.get(digest, {'missing'})))}"
        for digest, reason in malformed.items()
        if reasons.get(digest) != {reason}
    )
    if wrong:
        row.notes.append("DLQ mismatches: " + ", ".join(f"{k} x{v}" for k, v in wrong.items()))
    valid_letters = sum(1 for d in reasons if d not in malformed)
    if valid_letters:
        row.notes.append(f"{valid_letters} valid events dead-lettered")
    missing = {e.value_sha256 for e in events if e.review_id in valid - stored}
    missing |= {d for d, reason in malformed.items() if reasons.get(d) != {reason}}
    row.details.update(missing_outputs=len(missing), missing_not_in_input_topic=0)
    if missing:  # lost by the broker (not in the input topic) or by the worker?
        in_topic = {hashlib.sha256(v).hexdigest() for v in read_topic(config.kafka, topic_in)}
        row.details["missing_not_in_input_topic"] = len(missing - in_topic)
        row.notes.append(
            f"of {len(missing)} events missing from the outputs, {len(missing - in_topic)} "
            "are not in the input topic either (the broker lost them)"
        )


# running ------------------------------------------------------------------------------------


def run_fault(fault: str, services: Services, args: argparse.Namespace, seed: int) -> Row:
    row = Row(fault=fault, events=args.events)
    config = scratch_config(
        f"faults_{fault}",
        bootstrap=services.broker.bootstrap,
        data_dir=services.root / fault,
        clickhouse=services.server,
        topic_partitions=args.partitions,
        batch_size=args.batch_size,
        model_max_length=args.max_length,
        heartbeat_interval_s=1.0,
        commit_interval_s=0.5,
    )
    ensure_topics(config.kafka)
    ch = connect(config.clickhouse)  # migrations once, up front, as compose's `migrate` does
    try:
        migrate(ch)
    finally:
        ch.close()
    events = make_events(
        args.events, seed=seed, malformed_share=args.malformed_share, config=config
    )
    feeder = Feeder(config.kafka, events, args.rate)
    commits = Commits(config.kafka)
    fleet = WorkerFleet(config, services.root / fault / "logs", size=args.workers)
    try:
        fleet.start()
        fleet.wait_answering()  # faults hit a running stream, not a starting one
        time.sleep(config.kafka.session_timeout_s)  # the group join (Tansu defect C)
        started = time.monotonic()
        feeder.start()
        run = Run(fleet, feeder, commits, services, row, args.outage_s)
        try:
            FAULT_STEPS[fault](run)
            feeder.join(timeout_s=3600)
            wait_drained(commits, feeder, timeout_s=args.drain_timeout_s)
        except (TimeoutError, RuntimeError) as exc:  # still count what did arrive
            row.failed = repr(exc)
        row.drain_s = time.monotonic() - started
        row.recovery_s = max(run.recoveries) if run.recoveries else None
    finally:
        fleet.stop()
        commits.close()
    row.max_rss_mb = fleet.peak_rss_bytes / 2**20
    row.restarts = fleet.restarts
    row.exit_codes = [record.code for record in fleet.exit_log]
    if feeder.unknown_offsets:
        row.notes.append(f"{feeder.unknown_offsets} events acked with no offset (a retry)")
    count_outcome(config, events, row)
    return row


@contextmanager
def services_for(fault: str, args: argparse.Namespace, shared: Services) -> Iterator[Services]:
    """The shared broker and server, or for the broker faults a Tansu of its own on an S3
    server (moto's, which honours the conditional writes Tansu relies on: see
    ``stream.local.s3`` and ``bench.broker_restart``)."""
    if fault not in BROKER_FAULTS:
        yield shared
        return
    root = shared.root / fault / "s3"
    with S3Server(root) as s3:
        broker = TansuBroker(
            log_path=root / "tansu.log", storage=s3.storage_url, env=s3.client_env()
        )
        with broker:
            yield Services(broker, shared.server, shared.root)


def write_json(args: argparse.Namespace, rows: list[Row]) -> None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rows": [asdict(row) | {"meets_target": row.meets_target} for row in rows],
    }
    args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False))


def print_table(rows: list[Row], *, header: bool = True) -> None:
    title = (
        f"{'fault':<16} {'events':>7} {'valid':>6} {'stored':>6} {'lost':>5} {'double':>6} "
        f"{'short':>5} {'DLQ ok':>11} {'max RSS':>8} {'recovery':>8} {'drain':>6} {'restarts':>8}"
    )
    if header:
        print(title)
        print("-" * len(title))
    for row in rows:
        if row.skipped or (row.failed and not row.valid):
            what = f"skipped: {row.skipped}" if row.skipped else f"FAILED: {row.failed}"
            print(f"{row.fault:<16} {what}")
            continue
        recovery = "-" if row.recovery_s is None else f"{row.recovery_s:.1f}s"
        print(
            f"{row.fault:<16} {row.events:>7} {row.valid:>6} {row.stored:>6} {row.lost:>5} "
            f"{row.double_counted:>6} {row.aggregates_short:>5} "
            f"{f'{row.dead_letters_right}/{row.malformed}':>11} "
            f"{row.max_rss_mb:>6.0f}MB {recovery:>8} {row.drain_s:>5.0f}s {row.restarts:>8}"
        )
    for row in rows:
        notes = row.notes + ([f"exit codes {row.exit_codes}"] if row.exit_codes else [])
        notes += [f"FAILED: {row.failed}"] if row.failed and row.valid else []
        if notes and not row.skipped:
            print(f"  {row.fault}: " + "; ".join(notes))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per fault")
    parser.add_argument("--malformed-share", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--partitions",
        type=int,
        default=6,
        help="input partitions; Faust's sticky assignor caps a member at ceil(partitions / "
        "members), so with 4 partitions a third worker would get none",
    )
    parser.add_argument("--rate", type=float, default=400.0, help="events/s while producing")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-length", type=int, default=64, help="model token limit")
    parser.add_argument("--outage-s", type=float, default=30.0, help="ClickHouse down for")
    parser.add_argument("--drain-timeout-s", type=float, default=600.0)
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"any of {FAULTS}")
    parser.add_argument("--json", type=Path, default=DEFAULT_OUT, help="where the rows go")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="keep logs and data here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    args.faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; choose from {FAULTS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows: list[Row] = []
    with ExitStack() as stack:
        if args.work_dir is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rp-faults-")))
        else:
            root = args.work_dir.resolve()
            root.mkdir(parents=True, exist_ok=True)
        broker = stack.enter_context(TansuBroker(log_path=root / "tansu.log"))
        server = stack.enter_context(ClickHouseServer(root / "clickhouse"))
        shared = Services(broker, server, root)
        for seed, fault in enumerate(args.faults, start=11):
            if fault in BROKER_FAULTS and not s3_server_available():
                rows.append(Row(fault=fault, skipped=INSTALL_HINT))
                continue
            print(f"[faults] {fault}: {args.events} events, {args.workers} workers", flush=True)
            try:
                with services_for(fault, args, shared) as services:
                    rows.append(run_fault(fault, services, args, seed))
            except Exception as exc:  # the row failed to run: say so, go on with the next
                rows.append(Row(fault=fault, events=args.events, failed=repr(exc)))
            write_json(args, rows)  # after every row, so a long run leaves what it has
            print_table(rows[-1:], header=False)
    print()
    print_table(rows)
    print(f"\nJSON: {args.json}")
    return 0 if all(row.meets_target or row.skipped for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
