"""What a POST /predict flood costs the stream, measured side by side in one run.

Starts a scratch Tansu broker and clickhouse-server. For each round and each mode (``quiet``:
no requests; ``flood``: ``--clients`` threads posting ``--texts`` texts each, back to back,
for the whole stream; they wait as told by Retry-After on 429/503 unless
``--ignore-retry-after``) it puts the same N replayed reviews on a fresh input topic, starts
``reviewpulse worker`` and times from the first to the last stored review (the worker's
/metrics). Prints a table (stream seconds, reviews/s, the flood's answers by status) and the
ratio flood / quiet; with --json, writes them.

    .venv/bin/python -m bench.predict_flood --events 5000 --clients 32 --texts 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from model.corpus import SHIPPED_CORPUS
from stream.config import WorkerConfig
from stream.kafka import AckedProducer
from stream.local.clickhouse_server import ClickHouseServer
from stream.local.tansu import TansuBroker
from stream.local.worker import WorkerProcess, scratch_config
from stream.metrics import sample_total
from stream.replay import EventFactory, cycle_sources, read_corpus

PROCESSED = "reviewpulse_events_processed_total"


class Flood:
    """``clients`` threads posting to /predict until stopped; counts answers by status."""

    def __init__(
        self, url: str, texts: list[str], clients: int, honour_retry_after: bool = True
    ) -> None:
        self.url = url
        self.honour_retry_after = honour_retry_after
        self.body = json.dumps({"texts": texts}, ensure_ascii=False).encode()
        self.statuses: Counter[int] = Counter()
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            request = urllib.request.Request(self.url, data=self.body, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                    status = response.status
            except urllib.error.HTTPError as error:
                error.read()
                status = error.code
                retry_after = error.headers.get("Retry-After")
                if self.honour_retry_after and retry_after:
                    self._stop.wait(float(retry_after))
            except (urllib.error.URLError, OSError):
                status = 0
                time.sleep(0.05)
            with self._lock:
                self.statuses[status] += 1
                if status == 200:
                    self.latencies.append(time.monotonic() - started)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=35)


def run(config: WorkerConfig, events: list, root: Path, flood_args: dict | None) -> dict:
    AckedProducer(config.kafka, timeout_s=60).send(
        config.kafka.input_topic, [(e.key, e.value, None) for e in events]
    )
    worker = WorkerProcess(config, root / f"worker-{config.kafka.app_id}.log")
    flood = Flood(worker.url("/predict"), **flood_args) if flood_args else None
    # The flood starts once the worker answers, before it has joined the group and read.
    worker.start()
    first_at = done_at = None
    try:
        while worker.get("/health/live") is None:
            if not worker.alive():
                raise RuntimeError(worker.log_tail())
            time.sleep(0.1)
        if flood is not None:
            flood.start()
        while done_at is None:
            if not worker.alive():
                raise RuntimeError(worker.log_tail())
            processed = sample_total(worker.metrics_text(), PROCESSED)
            now = time.monotonic()
            if first_at is None and processed > 0:
                first_at = now
            if processed >= len(events):
                done_at = now
            time.sleep(0.05)
    finally:
        if flood is not None:
            flood.stop()
        if worker.alive():
            worker.stop()
    seconds = done_at - first_at
    row = {
        "mode": "flood" if flood else "quiet",
        "stream_s": round(seconds, 2),
        "reviews_per_s": round(len(events) / seconds, 1),
    }
    if flood is not None:
        answered = dict(sorted(flood.statuses.items()))
        row["predict_answers"] = answered
        row["predict_ok_texts_per_s"] = round(
            answered.get(200, 0) * len(flood_args["texts"]) / seconds, 1
        )
        row["predict_p50_ms"] = (
            round(1000 * statistics.median(flood.latencies), 1) if flood.latencies else None
        )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--texts", type=int, default=64, help="texts per /predict request")
    parser.add_argument("--rounds", type=int, default=1, help="quiet + flood pairs, alternated")
    parser.add_argument(
        "--ignore-retry-after",
        action="store_true",
        help="flood clients retry at once after 429/503 (the worst case)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    factory = EventFactory(seed=11, id_prefix="pf", malformed_share=0.0)
    sources = cycle_sources(read_corpus(SHIPPED_CORPUS), 11)
    events = [factory.make(next(sources), datetime.now(UTC)) for _ in range(args.events)]
    texts = [json.loads(e.value)["text"] for e in events[: args.texts]]
    rows = []
    with tempfile.TemporaryDirectory(prefix="rp-predict-flood-") as scratch:
        root = Path(scratch)
        with (
            TansuBroker(log_path=root / "tansu.log") as broker,
            ClickHouseServer(root / "clickhouse") as server,
        ):
            for round_ in range(args.rounds):
                modes = [None, {"texts": texts, "clients": args.clients}]
                for flood_args in modes if round_ % 2 == 0 else modes[::-1]:
                    config = scratch_config(
                        "flood", bootstrap=broker.bootstrap, data_dir=root, clickhouse=server
                    )
                    if flood_args:
                        flood_args["honour_retry_after"] = not args.ignore_retry_after
                    rows.append({"round": round_, **run(config, events, root, flood_args)})
                    print(json.dumps(rows[-1]), flush=True)
    quiet = statistics.median(r["stream_s"] for r in rows if r["mode"] == "quiet")
    flooded = statistics.median(r["stream_s"] for r in rows if r["mode"] == "flood")
    print()
    print("round | mode | stream s | reviews/s | /predict answers | ok texts/s | p50 ms")
    for r in rows:
        print(
            f"{r['round']} | {r['mode']} | {r['stream_s']} | {r['reviews_per_s']} | "
            f"{r.get('predict_answers', '-')} | {r.get('predict_ok_texts_per_s', '-')} | "
            f"{r.get('predict_p50_ms', '-')}"
        )
    ratio = round(flooded / quiet, 3)
    print(f"\nstream time flood / quiet (medians): {flooded} s / {quiet} s = {ratio}")
    if args.json:
        summary = {
            "events": args.events,
            "clients": args.clients,
            "texts": args.texts,
            "ignore_retry_after": args.ignore_retry_after,
        }
        args.json.write_text(json.dumps({**summary, "ratio": ratio, "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
