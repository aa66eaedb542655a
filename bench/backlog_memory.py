"""The worker's memory under a backlog: RSS while it works through N queued reviews.

Starts a scratch Tansu broker and clickhouse-server, puts N replayed reviews on a fresh input
topic, then starts ``reviewpulse worker`` (server backend) and samples its resident memory
(/proc) every 0.25 s until every review is stored or ``--max-seconds`` pass. Each entry of
``--buffers`` is one run with that Faust stream buffer (``stream-buffer-maxsize``; the
project default is 4096, as Faust's own) and ``--fetch-bytes`` per partition. Prints a
table (max RSS, RSS after start-up, reviews stored, reviews/s) and, with --json, writes it.

    .venv/bin/python -m bench.backlog_memory --events 200000 --buffers 1024,4096
"""

from __future__ import annotations

import argparse
import json
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
from stream.metrics import sample_total
from stream.replay import EventFactory, cycle_sources, read_corpus

PROCESSED = "reviewpulse_events_processed_total"
MIB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS), in bytes; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def produce(config: WorkerConfig, count: int, chunk: int = 20_000) -> None:
    factory = EventFactory(seed=5, id_prefix="bm", malformed_share=0.0)
    sources = cycle_sources(read_corpus(SHIPPED_CORPUS), 5)
    producer = AckedProducer(config.kafka, timeout_s=120)
    now = datetime.now(UTC)
    for start in range(0, count, chunk):
        events = [factory.make(next(sources), now) for _ in range(min(chunk, count - start))]
        producer.send(config.kafka.input_topic, [(e.key, e.value, None) for e in events])
    producer.close()


def run(config: WorkerConfig, events: int, root: Path, max_seconds: float) -> dict:
    produce(config, events)
    worker = WorkerProcess(config, root / f"worker-{config.kafka.app_id}.log").start()
    assert worker.process is not None
    pid = worker.process.pid
    peak = 0
    started_rss = None
    first_at = None
    processed = 0.0
    deadline = time.monotonic() + max_seconds
    try:
        while time.monotonic() < deadline:
            if not worker.alive():
                raise RuntimeError(worker.log_tail())
            peak = max(peak, rss_bytes(pid))
            text = worker.get("/metrics", timeout_s=2)
            if text is not None:
                processed = sample_total(text.decode(), PROCESSED)
                if first_at is None and processed > 0:
                    first_at = time.monotonic()
                    started_rss = rss_bytes(pid)
                if processed >= events:
                    break
            time.sleep(0.25)
        elapsed = time.monotonic() - (first_at or time.monotonic())
    finally:
        worker.stop()
    return {
        "stream_buffer_maxsize": config.kafka.stream_buffer_maxsize,
        "fetch_bytes": config.kafka.consumer_max_fetch_bytes,
        "backlog": events,
        "stored": int(processed),
        "reviews_per_s": round(processed / elapsed, 1) if elapsed else None,
        "rss_at_first_batch_mib": round((started_rss or 0) / MIB),
        "max_rss_mib": round(peak / MIB),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--buffers", default="4096", help="comma-separated stream buffer sizes")
    parser.add_argument("--fetch-bytes", type=int, default=1_048_576)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rp-backlog-memory-") as scratch:
        root = Path(scratch)
        with (
            TansuBroker(log_path=root / "tansu.log") as broker,
            ClickHouseServer(root / "clickhouse") as server,
        ):
            for buffer in (int(b) for b in args.buffers.split(",")):
                config = scratch_config(
                    "mem",
                    bootstrap=broker.bootstrap,
                    data_dir=root,
                    clickhouse=server,
                    stream_buffer_maxsize=buffer,
                    consumer_max_fetch_bytes=args.fetch_bytes,
                )
                rows.append(run(config, args.events, root, args.max_seconds))
                print(json.dumps(rows[-1]), flush=True)
    columns = list(rows[0])
    print()
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[c]) for c in columns))
    if args.json:
        args.json.write_text(json.dumps({"runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
