"""How long the live page's ClickHouse reads take on a large shop.

    .venv/bin/python -m bench.dashboard [--products 2000] [--reviews 500000] [--repeat 5]
                                        [--backend both|native|embedded] [--json PATH]

Fills a scratch clickhouse-server 18.16 and a scratch chdb directory (every migration
applied, the materialized views on) with ``--reviews`` classified reviews of ``--products``
products in 10 categories over the last 48 hours (product popularity Zipf-like, 20% negative,
half of those with complaint words, 70% rated), plus 50 alerts. Then times, on each backend
side by side, every read behind the page (``stream.dashboard.queries``) and each JSON body
the page asks for (``stream.dashboard.assemble``): one warm-up, then ``--repeat`` runs;
prints median and worst milliseconds and writes them as JSON. The target is 300 ms per
read; this measures, it does not assert.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from model.text import clean_text
from stream.config import PROJECT_ROOT, ClickHouseConfig, MonitorConfig
from stream.dashboard import assemble, queries
from stream.dashboard.queries import Span
from stream.keywords import Keywords
from stream.local.clickhouse_server import ClickHouseServer
from stream.reputation.alerts import ALERT_COLUMNS
from stream.reputation.queries import ALERTS_TABLE
from stream.sink.connection import connect
from stream.sink.migrations import migrate
from stream.sink.store import ReviewStore

DEFAULT_JSON = PROJECT_ROOT / ".data" / "bench" / "dashboard.json"
TARGET_MS = 300.0
CATEGORIES = ("手机", "衣服", "热水器", "书籍", "洗发水", "电脑", "水果", "酒店", "平板", "蒙牛")
TEXTS = {
    "positive": ("东西很好用，物流也快，非常满意", "质量不错，包装完好，和描述一致"),
    "neutral": ("东西收到了，还行吧，和别家差不多",),
    "negative": ("不太喜欢，感觉一般，有点失望", "颜色和图片差别有点大，不太满意"),
    "complaint": ("用了两天就漏水了，质量太差，申请退货", "收到就坏了，屏幕有裂痕，要求退货"),
}


def make_rows(products: int, reviews: int, now: datetime, seed: int) -> list[dict[str, Any]]:
    """Classified review rows; texts segmented once each by the stream's own keywords."""
    rng = random.Random(seed)
    keywords = Keywords.load()
    terms = {text: keywords.extract(clean_text(text)) for texts in TEXTS.values() for text in texts}
    weights = [1 / (rank + 1) ** 0.8 for rank in range(products)]
    chosen = rng.choices(range(products), weights=weights, k=reviews)
    rows = []
    for i, p in enumerate(chosen):
        roll = rng.random()
        kind = (
            ("complaint" if rng.random() < 0.5 else "negative")
            if roll < 0.2
            else "neutral"
            if roll < 0.3
            else "positive"
        )
        sentiment = "negative" if kind == "complaint" else kind
        text = rng.choice(TEXTS[kind])
        cleaned = clean_text(text)
        confidence = 0.55 + 0.4 * rng.random()
        rest = (1 - confidence) / 2
        probabilities = {label: rest for label in ("negative", "neutral", "positive")}
        probabilities[sentiment] = confidence
        rating = None
        if rng.random() < 0.7:
            rating = {"negative": rng.choice((1, 2)), "neutral": 3}.get(sentiment, 5)
        created = now - timedelta(seconds=rng.uniform(0, 48 * 3600))
        rows.append(
            {
                "review_id": f"b{i}",
                "product_id": f"P-{CATEGORIES[p % len(CATEGORIES)]}-{p:04d}",
                "category": CATEGORIES[p % len(CATEGORIES)],
                "user_id": f"u{rng.randrange(100_000)}",
                "rating": rating,
                "text": cleaned,
                "sentiment": sentiment,
                "confidence": confidence,
                "prob_negative": probabilities["negative"],
                "prob_neutral": probabilities["neutral"],
                "prob_positive": probabilities["positive"],
                "keywords": list(terms[text].keywords),
                "complaint_keywords": list(terms[text].complaint_keywords),
                "model_version": "bench",
                "created_at": created.replace(microsecond=0),
                "processed_at": created.replace(microsecond=0),
                "tokens": len(cleaned),
                "unknown_tokens": 0,
            }
        )
    return rows


def alert_rows(now: datetime, rows: list[dict[str, Any]], count: int) -> list[list[Any]]:
    out = []
    for i in range(count):
        raised = now - timedelta(minutes=20 * i)
        subject = rows[i * 97]["product_id"]
        samples = [rows[i * 97 + k]["review_id"] for k in range(3)]
        payload = {
            "kind": "negative_spike",
            "figures": {"window_reviews": 13, "window_hits": 11, "rate": 0.85},
            "top_complaints": [{"keyword": "漏水", "reviews": 7}],
            "window_start": raised.isoformat(),
            "window_end": raised.isoformat(),
        }
        row = {
            "alert_id": f"a{i}",
            "kind": "negative_spike",
            "severity": "critical",
            "subject_type": "product",
            "subject": subject,
            "category": rows[i * 97]["category"],
            "window_start": raised.replace(microsecond=0),
            "window_end": raised.replace(microsecond=0),
            "baseline_start": (raised - timedelta(hours=24)).replace(microsecond=0),
            "raised_at": raised.replace(microsecond=0),
            "last_seen_at": raised.replace(microsecond=0),
            "status": "published",
            "message": f"product {subject}: 85% negative",
            "sample_review_ids": samples,
            "payload": json.dumps(payload, ensure_ascii=False),
            "version": 1,
        }
        out.append([row[c] for c in ALERT_COLUMNS])
    return out


def timed(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    fn()  # warm-up: caches, first-touch of parts
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(1000 * (time.perf_counter() - started))
    return {"median_ms": statistics.median(runs), "max_ms": max(runs)}


def measure(
    config: ClickHouseConfig, rows: list[dict[str, Any]], now: datetime, repeat: int
) -> dict[str, Any]:
    ch = connect(config)
    try:
        migrate(ch)
        started = time.perf_counter()
        store = ReviewStore(ch)
        for start in range(0, len(rows), 20_000):
            store.write_reviews(rows[start : start + 20_000])
        ch.insert(ALERTS_TABLE, ALERT_COLUMNS, alert_rows(now, rows, 50))
        load_s = time.perf_counter() - started
        hour, day = (Span.ending_at(now, timedelta(hours=h)) for h in (1, 24))
        spark = Span.ending_at(now, timedelta(hours=24))
        worst = [
            r["product_id"] for r in queries.ranking(ch, "product_id", day, min_reviews=5, limit=10)
        ]
        busiest = rows[0]["product_id"]
        reads: dict[str, Callable[[], Any]] = {
            "ranking products 1h": lambda: queries.ranking(
                ch, "product_id", hour, min_reviews=5, limit=10
            ),
            "ranking products 24h": lambda: queries.ranking(
                ch, "product_id", day, min_reviews=5, limit=10
            ),
            "ranking categories 24h": lambda: queries.ranking(
                ch, "category", day, min_reviews=5, limit=10
            ),
            "sparklines 10 products 24h": lambda: queries.sparklines(
                ch, "product_id", worst, spark, 3600
            ),
            "complaints 10 products 24h": lambda: queries.top_complaints(
                ch, "product_id", worst, day
            ),
            "complaints categories 24h": lambda: queries.top_complaints(ch, "category", None, day),
            "alerts 20 + samples": lambda: queries.recent_alerts(ch, now, limit=20, samples=3),
            "product summary": lambda: queries.product_summary(ch, busiest, now),
            "product minutes 6h": lambda: queries.product_minutes(
                ch, busiest, Span.ending_at(now, timedelta(hours=6))
            ),
            "product latest 50 reviews": lambda: queries.latest_reviews(ch, busiest, now, limit=50),
        }
        bodies: dict[str, Callable[[], Any]] = {
            "GET /dashboard/api/reputation (12 reads)": lambda: assemble.reputation(
                ch, now, limit=10, min_reviews=5, categories=10
            ),
            "GET /dashboard/api/alerts": lambda: assemble.alerts(ch, now, limit=20, samples=3),
            "GET /dashboard/api/products/<id>": lambda: assemble.product(
                ch, busiest, now, hours=6, reviews=50
            ),
            "GET /dashboard/api/model": lambda: assemble.model_health(
                ch, "no model card (bench)", MonitorConfig(), now
            ),
        }
        return {
            "load_s": load_s,
            "reads": {name: timed(fn, repeat) for name, fn in reads.items()},
            "bodies": {name: timed(fn, repeat) for name, fn in bodies.items()},
        }
    finally:
        ch.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--reviews", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=("both", "native", "embedded"), default="both")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"[{DEFAULT_JSON}]")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    rows = make_rows(args.products, args.reviews, now, args.seed)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        if args.backend in ("both", "native"):
            with ClickHouseServer(Path(scratch, "server")) as server:
                results["native (server 18.16)"] = measure(
                    ClickHouseConfig(
                        clickhouse_backend="native",
                        clickhouse_host=server.host,
                        clickhouse_port=server.port,
                        clickhouse_database="bench_dashboard",
                        clickhouse_timeout_s=120,
                    ),
                    rows,
                    now,
                    args.repeat,
                )
        if args.backend in ("both", "embedded"):
            results["embedded (chdb)"] = measure(
                ClickHouseConfig(
                    clickhouse_backend="embedded",
                    chdb_path=Path(scratch, "chdb"),
                    clickhouse_database="bench_dashboard",
                ),
                rows,
                now,
                args.repeat,
            )
    names = list(results)
    print(
        f"\nLive page reads: {args.products:,} products, {args.reviews:,} reviews over 48 h, "
        f"median / worst of {args.repeat} runs in ms (target {TARGET_MS:.0f} ms per read)"
    )
    for part in ("reads", "bodies"):
        print(f"\n{'':44}" + "".join(f"{n:>26}" for n in names))
        for name in results[names[0]][part]:
            figures = [results[n][part][name] for n in names]
            cells = "".join(f"{f['median_ms']:>14.0f} / {f['max_ms']:<9.0f}" for f in figures)
            print(f"{name:44}{cells}")
    for n in names:
        print(f"load {n}: {results[n]['load_s']:.1f} s")
    output = {
        "products": args.products,
        "reviews": args.reviews,
        "repeat": args.repeat,
        "target_ms": TARGET_MS,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(output, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
