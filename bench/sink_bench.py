"""Insert rate of ReviewStore.write_reviews on both ClickHouse backends, side by side.

Starts a scratch clickhouse-server 18.16 and a scratch chdb directory, applies every
migration (so all materialized views are attached, as in production), then writes
``--batches`` batches of ``--batch-size`` fresh reviews, and the same batches again
(redelivery: the existence check finds them all, nothing is inserted). It repeats this
with the materialized views dropped, to show what they cost.

    .venv/bin/python bench/sink_bench.py --batches 5 --batch-size 10000
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from model.labels import SENTIMENTS
from stream.config import ClickHouseConfig
from stream.local.clickhouse_server import ClickHouseServer
from stream.sink.connection import connect
from stream.sink.migrations import migrate
from stream.sink.store import ReviewStore

WORDS = ["质量", "物流", "客服", "包装", "价格", "颜色", "尺寸", "电池", "屏幕", "味道"]
COMPLAINTS = ["质量差", "漏水", "假货", "退货", "发货慢"]


def make_rows(count: int, offset: int, rng: random.Random) -> list[dict[str, Any]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(offset, offset + count):
        sentiment = rng.choice(SENTIMENTS)
        rows.append(
            {
                "review_id": f"bench-{i:09d}",
                "product_id": f"p{rng.randint(1, 200)}",
                "category": rng.choice(["家电", "服装", "食品", "数码"]),
                "user_id": f"u{rng.randint(1, 100_000)}",
                "rating": rng.choice([None, 1, 2, 3, 4, 5]),
                "text": "这款商品收到了，整体来说还可以，物流很快但是包装有点破损。" * 2,
                "sentiment": sentiment,
                "confidence": rng.random(),
                "prob_negative": 0.2,
                "prob_neutral": 0.3,
                "prob_positive": 0.5,
                "keywords": rng.sample(WORDS, 5),
                "complaint_keywords": rng.sample(COMPLAINTS, rng.randint(0, 2)),
                "model_version": "bench",
                "created_at": start + timedelta(seconds=rng.randint(0, 3 * 3600)),
                "processed_at": start + timedelta(hours=4),
            }
        )
    return rows


def run(
    config: ClickHouseConfig, batches: list[list[dict[str, Any]]], views: bool
) -> tuple[float, float]:
    ch = connect(config)
    try:
        migrate(ch)
        if not views:  # what the materialized views cost, measured in the same run
            for (name,) in ch.query(
                "SELECT name FROM system.tables WHERE database = currentDatabase() "
                "AND engine = 'MaterializedView'"
            ):
                ch.execute(f"DROP TABLE {name}")
        store = ReviewStore(ch)
        total = sum(len(b) for b in batches)
        began = time.perf_counter()
        inserted = sum(store.write_reviews(batch) for batch in batches)
        fresh = time.perf_counter() - began
        assert inserted == total, (inserted, total)
        began = time.perf_counter()
        again = sum(store.write_reviews(batch) for batch in batches)
        redelivered = time.perf_counter() - began
        assert again == 0 and store.count_final() == total
        return total / fresh, total / redelivered
    finally:
        ch.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(1)
    batches = [make_rows(args.batch_size, i * args.batch_size, rng) for i in range(args.batches)]
    results = {}
    with tempfile.TemporaryDirectory() as scratch, ClickHouseServer(Path(scratch, "ch")) as server:
        for views in (True, False):
            suffix = "" if views else ", no views"
            database = "bench" if views else "bench_no_views"
            results[f"native (server 18.16){suffix}"] = run(
                ClickHouseConfig(
                    clickhouse_backend="native",
                    clickhouse_port=server.port,
                    clickhouse_database=database,
                ),
                batches,
                views,
            )
            results[f"embedded (chdb){suffix}"] = run(
                ClickHouseConfig(
                    clickhouse_backend="embedded",
                    chdb_path=Path(scratch, "chdb"),
                    clickhouse_database=database,
                ),
                batches,
                views,
            )
    print(f"ReviewStore.write_reviews, {args.batches} batches x {args.batch_size:,} rows")
    print(f"{'backend':34} {'new rows/s':>12} {'redelivered rows/s':>20}")
    for name, (fresh, again) in results.items():
        print(f"{name:34} {fresh:12,.0f} {again:20,.0f}")


if __name__ == "__main__":
    main()
