"""The schema, the store and the reads on a real replicated, sharded ClickHouse: ZooKeeper and
four clickhouse-server 18.16 nodes (2 shards x 2 replicas), started by the session fixture."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_driver import Client

from stream.config import ClickHouseConfig
from stream.local.cluster import LocalCluster
from stream.monitoring.queries import read_feedback
from stream.monitoring.rules import MonitorWindow
from stream.reputation import reports
from stream.sink.connection import connect
from stream.sink.migrations import MigrationError, load_migrations, migrate
from stream.sink.store import REVIEW_COLUMNS, ReviewStore, review_values
from tests.stream.sink.reviews import make_rows

pytestmark = pytest.mark.cluster


def node(cluster: LocalCluster, name: str, database: str) -> Client:
    (ports,) = [n for n in cluster.layout if n.name == name]
    return Client("127.0.0.1", port=ports.tcp_port, database=database)


def wait_replicated(cluster: LocalCluster, database: str, table: str, timeout_s: float = 30):
    """Until both replicas of each shard hold the same rows of ``table``."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = {
            n.name: node(cluster, n.name, database).execute(f"SELECT count() FROM {table}")[0][0]
            for n in cluster.layout
        }
        by_shard = {}
        for n in cluster.layout:
            by_shard.setdefault(n.shard, set()).add(counts[n.name])
        if all(len(values) == 1 for values in by_shard.values()):
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"{table} not replicated: {counts}")
        time.sleep(0.2)


def sync_replicas(cluster: LocalCluster, database: str) -> None:
    """Until every replica holds every part of its shard. An insert lands on one replica
    per shard and a Distributed read picks either (load_balancing random), so an exact read
    right after a write waits for replication first."""
    for n in cluster.layout:
        client = node(cluster, n.name, database)
        for (table,) in client.execute(
            f"SELECT name FROM system.tables WHERE database = '{database}' "
            "AND engine LIKE 'Replicated%'"
        ):
            client.execute(f"SYSTEM SYNC REPLICA {database}.{table}")


@pytest.fixture
def cluster_config(make_config) -> ClickHouseConfig:
    return make_config().clickhouse


def test_migrations_build_replicated_shards_and_are_idempotent(cluster_config, clickhouse_cluster):
    ch = connect(cluster_config)
    applied = migrate(ch)
    assert applied == [m.label for m in load_migrations() if not m.requires]  # 18.16
    assert migrate(ch) == []
    database = cluster_config.clickhouse_database
    for n in clickhouse_cluster.layout:
        client = node(clickhouse_cluster, n.name, database)
        engines = dict(
            client.execute(f"SELECT name, engine FROM system.tables WHERE database = '{database}'")
        )
        assert engines["reviews"] == "Distributed"
        assert engines["reviews_local"] == "ReplicatedReplacingMergeTree"
        assert engines["sentiment_minute_local"] == "ReplicatedAggregatingMergeTree"
        assert engines["sentiment_minute_mv"] == "MaterializedView"
        # the ledger is one replica set over every node: each node knows every migration
        ledger = client.execute("SELECT count(DISTINCT version) FROM schema_migrations")[0][0]
        assert ledger == len(applied)


def test_writes_and_reads_match_one_server_on_the_same_data(
    cluster_config, make_config, clickhouse_cluster
):
    """Reports, alert reads and feedback queries through the Distributed tables give the
    same answers as on one node."""
    rows = make_rows(600, seed=11)
    now = max(row["created_at"] for row in rows) + timedelta(minutes=1)
    for row in rows:  # recent, so the 1 h / 24 h reports see them
        row["created_at"] += datetime.now(UTC) - now
    answers = []
    for config in (cluster_config, make_config(clickhouse_cluster="").clickhouse):
        ch = connect(config)
        migrate(ch)
        ReviewStore(ch).write_reviews(rows)
        if config.clickhouse_cluster:
            sync_replicas(clickhouse_cluster, config.clickhouse_database)
        window = MonitorWindow.ending_at(datetime.now(UTC), 60, 1)
        feedback = read_feedback(ch, window, "category")
        answers.append(
            {
                "final": ch.query("SELECT count() FROM reviews FINAL")[0][0],
                "minutes": ReviewStore(ch).minute_counts(),
                "top": reports.top_products(ch, period="1h", min_reviews=1),
                "complaints": reports.rising_complaints(ch, hours=1),
                "feedback": {k: vars(v) for k, v in feedback.window.items()},
                "categories": ch.query("SELECT * FROM category_reputation ORDER BY category"),
            }
        )
    on_cluster, on_one = answers
    assert on_cluster["final"] == len(rows)
    assert on_cluster == on_one


def test_retried_batch_after_a_shard_timed_out_is_not_double_counted(
    cluster_config, clickhouse_cluster
):
    """The insert reached shard 1 and timed out before the client heard back; the retry
    through the Distributed table stores and counts every review once."""
    ch = connect(cluster_config)
    migrate(ch)
    database = cluster_config.clickhouse_database
    rows = make_rows(400, seed=12)
    shard_of = dict(
        ch.query(
            "SELECT product_id, shardNum FROM (SELECT arrayJoin(['p1','p2','p3','p4']) AS "
            "product_id, cityHash64(product_id) % 2 + 1 AS shardNum)"
        )
    )
    first_shard = [review_values(r) for r in rows if shard_of[r["product_id"]] == 1]
    assert 0 < len(first_shard) < len(rows)
    node(clickhouse_cluster, "s1r1", database).execute(
        f"INSERT INTO reviews_local ({', '.join(REVIEW_COLUMNS)}) VALUES", first_shard
    )
    ReviewStore(ch).write_reviews(rows)  # the retry: the whole batch again
    ReviewStore(ch).write_reviews(rows)  # and once more, from another worker
    sync_replicas(clickhouse_cluster, database)
    assert ch.query("SELECT count() FROM reviews FINAL")[0][0] == len(rows)
    assert ch.query("SELECT count() FROM reviews")[0][0] == len(rows)  # no copy at all
    totals = sum(c.reviews for c in ReviewStore(ch).minute_counts())
    assert totals == len(rows)
    wait_replicated(clickhouse_cluster, database, "reviews_local")


@pytest.mark.slow
def test_a_replica_down_loses_nothing_and_catches_up(cluster_config, clickhouse_cluster):
    ch = connect(cluster_config)
    migrate(ch)
    database = cluster_config.clickhouse_database
    rows = make_rows(1200, seed=13)
    store = ReviewStore(ch)
    store.write_reviews(rows[:400])
    clickhouse_cluster.stop_node("s2r2")
    try:
        store.write_reviews(rows[400:800])  # the stream goes on without the replica
        with pytest.raises(MigrationError, match="do not answer"):
            migrate(connect(cluster_config))  # DDL refuses a half-applied schema
    finally:
        clickhouse_cluster.start_node("s2r2")
    store.write_reviews(rows[800:])
    sync_replicas(clickhouse_cluster, database)
    counts = wait_replicated(clickhouse_cluster, database, "reviews_local", timeout_s=60)
    assert counts["s2r2"] == counts["s2r1"] > 0
    assert ch.query("SELECT count() FROM reviews FINAL")[0][0] == len(rows)
    assert sum(c.reviews for c in store.minute_counts()) == len(rows)
    assert migrate(connect(cluster_config)) == []
