"""Cluster mode's statement rewriting (stream.sink.cluster), on the shapes the migrations use."""

from __future__ import annotations

import pytest

from stream.sink.cluster import (
    ClusterSchemaError,
    cluster_statements,
    sharded_table,
    sharded_tables,
)
from stream.sink.migrations import load_migrations

REVIEWS = """CREATE TABLE IF NOT EXISTS reviews
(
    review_id String,
    product_id String,
    sentiment Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1),
    processed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(processed_at)
PARTITION BY toYYYYMM(processed_at)
ORDER BY review_id"""
ALERTS = """CREATE TABLE IF NOT EXISTS alert_progress (name String, version UInt64)
ENGINE = ReplacingMergeTree(version) ORDER BY name"""
AGG = """CREATE TABLE IF NOT EXISTS kw (hour DateTime, product_id String, keyword String,
reviews AggregateFunction(uniqExact, String)) ENGINE = AggregatingMergeTree
ORDER BY (hour, product_id, keyword)"""
MV = """CREATE MATERIALIZED VIEW IF NOT EXISTS kw_mv TO kw
AS SELECT toStartOfHour(processed_at) AS hour, product_id, keyword,
    uniqExactState(review_id) AS reviews
FROM reviews
ARRAY JOIN arrayDistinct(arrayConcat(keywords, complaint_keywords)) AS keyword
GROUP BY hour, product_id, keyword"""
TABLES = sharded_tables([REVIEWS, ALERTS, AGG])


def test_tables_shard_by_product_else_by_their_sorting_key():
    assert sharded_table(REVIEWS).sharding_key == "cityHash64(product_id)"
    assert sharded_table(ALERTS).sharding_key == "cityHash64(name)"
    assert sharded_table(MV) is None


def test_create_table_becomes_replicated_local_plus_distributed():
    local, distributed = cluster_statements(REVIEWS, "c1", "db", TABLES)
    assert local.startswith("CREATE TABLE IF NOT EXISTS db.reviews_local ON CLUSTER c1 (")
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/reviews', "
        "'{replica}', processed_at) PARTITION BY toYYYYMM(processed_at)" in local
    )
    assert "Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1)" in local
    assert distributed == (
        "CREATE TABLE IF NOT EXISTS db.reviews ON CLUSTER c1 AS db.reviews_local "
        "ENGINE = Distributed(c1, db, reviews_local, cityHash64(product_id))"
    )
    (agg_local, _) = cluster_statements(AGG, "c1", "db", TABLES)
    assert "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/db/kw', '{replica}')" in (
        agg_local
    )


def test_materialized_view_reads_and_writes_the_local_tables_on_each_node():
    (statement,) = cluster_statements(MV, "c1", "db", TABLES)
    assert statement.startswith(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS db.kw_mv ON CLUSTER c1 TO db.kw_local AS SELECT"
    )
    assert "FROM db.reviews_local\n" in statement
    assert "ARRAY JOIN arrayDistinct(arrayConcat(keywords, complaint_keywords))" in statement


def test_views_alters_drops_and_backfills():
    view = "CREATE VIEW IF NOT EXISTS top AS SELECT product_id FROM kw FINAL GROUP BY product_id"
    assert cluster_statements(view, "c1", "db", TABLES) == [
        "CREATE VIEW IF NOT EXISTS db.top ON CLUSTER c1 AS SELECT product_id FROM db.kw FINAL "
        "GROUP BY product_id"
    ]
    add = "ALTER TABLE reviews ADD COLUMN tokens UInt16 DEFAULT 0"
    assert cluster_statements(add, "c1", "db", TABLES) == [
        "ALTER TABLE db.reviews_local ON CLUSTER c1 ADD COLUMN tokens UInt16 DEFAULT 0",
        "DROP TABLE IF EXISTS db.reviews ON CLUSTER c1",
        TABLES["reviews"].distributed("c1", "db"),
    ]
    setting = "ALTER TABLE kw MODIFY SETTING non_replicated_deduplication_window = 100"
    assert cluster_statements(setting, "c1", "db", TABLES) == [
        "ALTER TABLE db.kw_local ON CLUSTER c1 MODIFY SETTING "
        "non_replicated_deduplication_window = 100"
    ]
    assert cluster_statements("DROP TABLE IF EXISTS top", "c1", "db", TABLES) == [
        "DROP TABLE IF EXISTS db.top ON CLUSTER c1"
    ]
    backfill = "INSERT INTO kw SELECT * FROM reviews FINAL"
    assert cluster_statements(backfill, "c1", "db", TABLES) == [backfill]


def test_unknown_shapes_are_refused_not_run_on_one_node():
    with pytest.raises(ClusterSchemaError):
        cluster_statements("RENAME TABLE a TO b", "c1", "db", TABLES)
    with pytest.raises(ClusterSchemaError):
        cluster_statements("ALTER TABLE nowhere ADD COLUMN x UInt8", "c1", "db", TABLES)


def test_every_shipped_migration_has_a_cluster_form():
    migrations = load_migrations()
    statements = [s for m in migrations for s in m.statements("db")]
    tables = sharded_tables(statements)
    assert {"reviews", "sentiment_minute", "alerts"} <= set(tables)
    for statement in statements:
        assert cluster_statements(statement, "c1", "db", tables)
