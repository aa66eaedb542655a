"""Benchmark: how long one alert evaluation and the reports take on a loaded database.

    python -m stream.reputation.bench --reviews 500000 --products 2000 [config flags]

Fills a FRESH database (``--clickhouse-database``; refused if it already has reviews) with
synthetic classified reviews over the last 25 hours (one product turned negative in the last
hour), then times ``AlertEngine.evaluate`` and each report ``--repeat`` times and prints the
median and the worst. Alerts go to a publisher that discards them: this measures the rules
and ClickHouse, not the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from stream.config import AlertConfig, ClickHouseConfig, add_config_arguments, resolve
from stream.reputation import reports
from stream.reputation.engine import AlertEngine
from stream.sink.backend import ClickHouse
from stream.sink.connection import connect
from stream.sink.migrations import migrate
from stream.sink.store import REVIEW_COLUMNS

CATEGORIES = ("书籍", "平板", "手机", "水果", "洗发水", "热水器", "蒙牛", "衣服", "计算机", "酒店")
COMPLAINTS = ("质量差", "损坏", "漏水", "假货", "退货", "发货慢")


class DiscardPublisher:
    """Accepts and drops alerts (the broker is not what this measures)."""

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        return None


def synthetic_rows(
    count: int, products: int, now: datetime, seed: int = 7
) -> Callable[[int], list[list[Any]]]:
    """A function returning the next ``n`` rows: 20% negative (a third with complaint
    keywords) except product 0, which gets busy and 80% negative in the last hour."""
    rng = random.Random(seed)
    produced = 0
    span = 25 * 3600

    def next_rows(n: int) -> list[list[Any]]:
        nonlocal produced
        rows = []
        for _ in range(min(n, count - produced)):
            i = produced
            produced += 1
            product = rng.randrange(products)
            age = rng.uniform(0, span)
            if i % 5000 == 0:  # product 0 gets 20x its share in the last hour
                product, age = 0, rng.uniform(0, 3600)
            turned = product == 0 and age < 3600
            roll = rng.random()
            if roll < (0.8 if turned else 0.2):
                sentiment = "negative"
            elif roll < (0.85 if turned else 0.4):
                sentiment = "neutral"
            else:
                sentiment = "positive"
            complaints = (
                [rng.choice(COMPLAINTS)]
                if sentiment == "negative" and (turned or rng.random() < 0.33)
                else []
            )
            created = now - timedelta(seconds=age)
            rating = rng.choice((None, 1, 2, 3, 4, 5))
            rows.append(
                [
                    f"bench-{i}",
                    f"P{product:05d}",
                    CATEGORIES[product % len(CATEGORIES)],
                    f"u{rng.randrange(100000)}",
                    rating,
                    "synthetic review",
                    sentiment,
                    0.9,
                    0.9 if sentiment == "negative" else 0.05,
                    0.9 if sentiment == "neutral" else 0.05,
                    0.9 if sentiment == "positive" else 0.05,
                    ["synthetic", *complaints],
                    complaints,
                    "bench",
                    created.replace(microsecond=0),
                    created.replace(microsecond=0),
                ]
            )
        return rows

    return next_rows


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), max(seconds)


def load(ch: ClickHouse, count: int, products: int, batch: int = 50_000) -> float:
    next_rows = synthetic_rows(count, products, datetime.now(UTC))
    start = time.perf_counter()
    while rows := next_rows(batch):
        ch.insert("reviews", REVIEW_COLUMNS, rows)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=500_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    add_config_arguments(parser, ClickHouseConfig, AlertConfig)
    args = parser.parse_args(argv)
    clickhouse = resolve(ClickHouseConfig, args)
    ch = connect(clickhouse)
    migrate(ch)
    if ch.query("SELECT count() FROM reviews")[0][0]:
        raise SystemExit(f"database {clickhouse.clickhouse_database!r} is not empty; use a new one")
    load_s = load(ch, args.reviews, args.products)
    print(
        f"backend {clickhouse.clickhouse_backend}: loaded {args.reviews:,} reviews for "
        f"{args.products:,} products in {load_s:.1f} s ({args.reviews / load_s:,.0f} rows/s)"
    )
    engine = AlertEngine(resolve(AlertConfig, args), ch, DiscardPublisher())
    raised: list[str] = []

    def evaluate() -> None:
        result = asyncio.run(engine.evaluate())
        raised.extend(f"{e['kind']}:{e['subject']}" for e in result.raised)

    cases: dict[str, Callable[[], Any]] = {
        "alert evaluation": evaluate,
        "report: top products 24h": lambda: reports.top_products(ch, period="24h"),
        "report: rising complaints": lambda: reports.rising_complaints(ch),
        "report: recent alerts": lambda: reports.recent_alerts(ch),
    }
    for name, fn in cases.items():
        median, worst = timed(fn, args.repeat)
        print(f"{name:28s} median {median * 1000:8.1f} ms   max {worst * 1000:8.1f} ms")
    print(f"alerts raised: {raised}")
    engine.close()
    ch.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
