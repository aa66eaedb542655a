"""Benchmark: how long one alert evaluation and the reports take on a loaded database.

    python -m stream.reputation.bench --reviews 500000 --products 2000 [config flags]

Fills a FRESH database (``--clickhouse-database``; refused if it already has reviews) with
synthetic classified reviews over the last 25 hours (one product turned negative in the last
hour), then times:

* the first ``AlertEngine.evaluate`` of a new engine (cold: it learns the complaint lexicon,
  reads a day of hourly baselines and steps through the last hour minute by minute);
* steady evaluations, one per ``alert_interval_s`` of wall clock (each re-evaluates the last
  ten minutes of event time, as in the worker), and each report, ``--repeat`` times: median
  and worst;
* relearning the complaint lexicon (once an hour in the worker).

Alerts go to a publisher that discards them: this measures the rules and ClickHouse, not the
broker. ``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stream.config import AlertConfig, ClickHouseConfig, add_config_arguments, resolve
from stream.reputation import reports
from stream.reputation.engine import AlertEngine, Evaluation
from stream.sink.backend import ClickHouse
from stream.sink.connection import connect
from stream.sink.migrations import migrate
from stream.sink.store import REVIEW_COLUMNS

CATEGORIES = ("书籍", "平板", "手机", "水果", "洗发水", "热水器", "蒙牛", "衣服", "计算机", "酒店")
COMPLAINTS = ("质量差", "损坏", "漏水", "假货", "退货", "发货慢")
WORDS = ("物流", "包装", "价格", "颜色", "尺寸", "电池", "屏幕", "味道", "客服", "质量")


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
                    [rng.choice(WORDS), rng.choice(WORDS), *complaints],
                    complaints,
                    "bench",
                    created.replace(microsecond=0),
                    created.replace(microsecond=0),
                    0,
                    0,
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


def load(ch: ClickHouse, count: int, products: int, now: datetime, batch: int = 50_000) -> float:
    next_rows = synthetic_rows(count, products, now)
    start = time.perf_counter()
    while rows := next_rows(batch):
        ch.insert("reviews", REVIEW_COLUMNS, rows)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=500_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    add_config_arguments(parser, ClickHouseConfig, AlertConfig)
    args = parser.parse_args(argv)
    clickhouse = resolve(ClickHouseConfig, args)
    alerts = resolve(AlertConfig, args)
    ch = connect(clickhouse)
    migrate(ch)
    if ch.query("SELECT count() FROM reviews")[0][0]:
        raise SystemExit(f"database {clickhouse.clickhouse_database!r} is not empty; use a new one")
    now = datetime.now(UTC)
    load_s = load(ch, args.reviews, args.products, now)
    print(
        f"backend {clickhouse.clickhouse_backend}: loaded {args.reviews:,} reviews for "
        f"{args.products:,} products in {load_s:.1f} s ({args.reviews / load_s:,.0f} rows/s)"
    )
    engine = AlertEngine(alerts, ch, DiscardPublisher())
    raised: list[str] = []
    ticks = iter(range(1, 10_000))

    def evaluate(at: datetime) -> Evaluation:
        result = asyncio.run(engine.evaluate(at))
        raised.extend(f"{e['kind']}:{e['subject']}" for e in result.raised)
        return result

    figures: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    first = evaluate(now)
    figures["first alert evaluation (cold)"] = {"median_s": time.perf_counter() - started}
    print(f"first evaluation stepped through {len(first.plan.buckets)} minute(s)")

    def steady() -> None:
        evaluate(now + timedelta(seconds=alerts.alert_interval_s * next(ticks)))

    def relearn() -> None:
        asyncio.run(engine.refresh_lexicon(now))

    cases: dict[str, Callable[[], Any]] = {
        "steady alert evaluation": steady,
        "complaint lexicon relearning": relearn,
        "report: top products 24h": lambda: reports.top_products(ch, period="24h"),
        "report: rising complaints": lambda: reports.rising_complaints(ch),
        "report: recent alerts": lambda: reports.recent_alerts(ch),
    }
    for name, fn in cases.items():
        median, worst = timed(fn, args.repeat)
        figures[name] = {"median_s": median, "max_s": worst}
    for name, values in figures.items():
        worst = values.get("max_s")
        tail = f"   max {worst * 1000:8.1f} ms" if worst is not None else ""
        print(f"{name:32s} median {values['median_s'] * 1000:8.1f} ms{tail}")
    print(f"alerts raised: {sorted(set(raised))}")
    print(f"learned complaint keywords: {engine.lexicon.size}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "backend": clickhouse.clickhouse_backend,
                    "reviews": args.reviews,
                    "products": args.products,
                    "seconds": figures,
                    "raised": sorted(set(raised)),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    engine.close()
    ch.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
