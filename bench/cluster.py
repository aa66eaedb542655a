"""Insert rate and storage: one clickhouse-server against a 2-shard x 2-replica cluster of the
same 18.16 binary on the same machine, side by side in one run, with real rows.

Rows are built from the shipped corpus the way the worker builds them (cleaned text, jieba
keywords, complaint keywords; the sentiment from the rating label, to leave the model out of an
insert benchmark), over ``--products`` products and one day. Each target gets every migration
(every materialized view attached, as in production); then ``--rows`` rows are written through
``ReviewStore.write_reviews`` in batches of ``--batch-size``. Compression is read from
``system.parts`` of the real tables after ``OPTIMIZE ... FINAL``.

    .venv/bin/python -m bench.cluster --rows 50000 --batch-size 5000
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jieba

from model.corpus import SHIPPED_CORPUS
from model.text import clean_text
from stream.config import PROJECT_ROOT, ClickHouseConfig
from stream.keywords import (
    find_complaints,
    read_complaint_lexicon,
    read_word_list,
    segment,
    select_keywords,
)
from stream.local.clickhouse_server import ClickHouseServer
from stream.local.cluster import LocalCluster
from stream.replay import cycle_sources, read_corpus
from stream.sink.connection import connect
from stream.sink.migrations import migrate
from stream.sink.store import ReviewStore

RESOURCES = PROJECT_ROOT / "stream" / "resources"
DEFAULT_OUT = PROJECT_ROOT / "reports" / "bench" / "cluster.json"
SENTIMENT_OF_LABEL = {0: "negative", 1: "positive"}


def build_rows(count: int, products: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    tokenizer = jieba.Tokenizer()
    stopwords = frozenset(read_word_list(RESOURCES / "stopwords_zh.txt"))
    lexicon = read_complaint_lexicon(RESOURCES / "complaint_lexicon.txt")
    variants = [(canonical, v) for canonical, vs in lexicon.items() for v in vs]
    sources = cycle_sources(read_corpus(SHIPPED_CORPUS), seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    for i in range(count):
        source = next(sources)
        text = clean_text(source.text)[:5000]
        created = start + timedelta(seconds=rng.randint(0, 86_399))
        rows.append(
            {
                "review_id": f"bench-{seed}-{i:09d}",
                "product_id": f"P{rng.randint(1, products):05d}",
                "category": source.category,
                "user_id": f"u{rng.randint(1, 1_000_000)}",
                "rating": rng.choice([1, 2]) if source.label == 0 else rng.choice([4, 5]),
                "text": text,
                "sentiment": SENTIMENT_OF_LABEL[source.label],
                "confidence": round(rng.uniform(0.5, 1.0), 6),
                "prob_negative": 0.1,
                "prob_neutral": 0.1,
                "prob_positive": 0.8,
                "keywords": select_keywords(segment(text, tokenizer), stopwords, 8),
                "complaint_keywords": find_complaints(text, variants),
                "model_version": "bench",
                "created_at": created,
                "processed_at": created + timedelta(seconds=1),
                "tokens": min(len(text), 128),
                "unknown_tokens": 0,
            }
        )
    return rows


def storage(ch: Any, database: str, local_suffix: str) -> dict[str, float]:
    """Compressed and uncompressed bytes of ``reviews`` and of every other table."""
    rows = ch.query(
        "SELECT table, sum(data_compressed_bytes), sum(data_uncompressed_bytes), sum(rows) "
        f"FROM system.parts WHERE database = '{database}' AND active GROUP BY table"
    )
    reviews = f"reviews{local_suffix}"
    out = {"reviews_compressed": 0.0, "reviews_uncompressed": 0.0, "aggregates_compressed": 0.0}
    for table, compressed, uncompressed, _ in rows:
        if table == reviews:
            out["reviews_compressed"] += compressed
            out["reviews_uncompressed"] += uncompressed
        elif table != "schema_migrations":
            out["aggregates_compressed"] += compressed
    return out


def run_target(config: ClickHouseConfig, rows: list[dict[str, Any]], batch: int) -> dict:
    ch = connect(config)
    migrate(ch)
    store = ReviewStore(ch)
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        store.write_reviews(rows[i : i + batch])
    seconds = time.perf_counter() - started
    stored = ch.query("SELECT count() FROM reviews FINAL")[0][0]
    result: dict[str, Any] = {"rows": stored, "seconds": seconds, "rows_per_s": stored / seconds}
    if not config.clickhouse_cluster:  # compression is a property of one replica's data
        for table in ("reviews",):
            ch.execute(f"OPTIMIZE TABLE {table} FINAL")
        result.update(storage(ch, config.clickhouse_database, ""))
    ch.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    rows = build_rows(args.rows, args.products, args.seed)
    results: dict[str, Any] = {"rows": args.rows, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as scratch:
        root = Path(scratch)
        with ClickHouseServer(root / "single") as single, LocalCluster(root / "cluster") as cl:
            base = {"clickhouse_backend": "native", "clickhouse_database": "bench"}
            single_cfg = ClickHouseConfig(
                **base, clickhouse_host=single.host, clickhouse_port=single.port
            )
            cluster_cfg = ClickHouseConfig(
                **base,
                clickhouse_host=cl.host,
                clickhouse_port=cl.port,
                clickhouse_cluster=cl.cluster,
            )
            results["single"] = run_target(single_cfg, rows, args.batch_size)
            results["cluster"] = run_target(cluster_cfg, rows, args.batch_size)
    single, cluster = results["single"], results["cluster"]
    results["cluster_over_single"] = cluster["rows_per_s"] / single["rows_per_s"]
    per_review = single["reviews_compressed"] / single["rows"]
    results["bytes_per_review_compressed"] = per_review
    results["compression_ratio"] = single["reviews_uncompressed"] / single["reviews_compressed"]
    results["aggregate_bytes_per_review"] = single["aggregates_compressed"] / single["rows"]
    results["gib_per_billion_reviews"] = (
        (single["reviews_compressed"] + single["aggregates_compressed"]) / single["rows"] * 1e9
    ) / 2**30

    print(f"{'target':<30} {'rows':>8} {'seconds':>8} {'rows/s':>9}")
    for name, label in (("single", "one server"), ("cluster", "2 shards x 2 replicas")):
        r = results[name]
        print(f"{label:<30} {r['rows']:>8} {r['seconds']:>8.2f} {r['rows_per_s']:>9.0f}")
    print(f"cluster / single insert rate: {results['cluster_over_single']:.2f}")
    print(
        f"reviews: {per_review:.0f} B/review compressed "
        f"(ratio {results['compression_ratio']:.1f}), aggregates "
        f"{results['aggregate_bytes_per_review']:.0f} B/review; "
        f"{results['gib_per_billion_reviews']:.0f} GiB per billion reviews per replica"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"JSON: {args.json}")


if __name__ == "__main__":
    main()
