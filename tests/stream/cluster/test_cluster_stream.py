"""Workers stream into the replicated, sharded cluster: every valid review exactly once
through the Distributed tables (FINAL), every malformed one dead-lettered, and the per-minute
aggregates equal the counts from the input (tests.stream.test_pipeline.check_outcome), with
two workers sharing the input, and with one replica of a shard stopped mid-stream and
started again (it catches up from the other replica)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from stream.config import KafkaConfig
from stream.local.cluster import LocalCluster
from stream.local.processes import free_port
from stream.replay import ReplayEvent
from stream.sink.connection import connect
from tests.stream.cluster.test_cluster import node, sync_replicas, wait_replicated
from tests.stream.harness import WorkerProcess, produce, wait_for
from tests.stream.test_pipeline import (
    check_outcome,
    make_replay,
    reviews_in_clickhouse,
    worker_config,
)

pytestmark = [pytest.mark.broker, pytest.mark.cluster, pytest.mark.slow]


def test_two_workers_on_the_cluster_store_every_review_once(
    make_config, clickhouse_cluster: LocalCluster, tmp_path: Path
):
    config = worker_config(make_config)
    replay = make_replay(2000, seed=21, config=config, malformed=0.05)
    produce(config.kafka, replay.events)
    workers = [
        WorkerProcess(
            config.replace(web_port=free_port(), worker_data_dir=tmp_path / f"worker{i}"),
            tmp_path / f"worker{i}.log",
        )
        for i in range(2)
    ]
    try:
        for worker in workers:
            worker.start()
        stored = reviews_in_clickhouse(config)
        wait_for(
            lambda: stored() >= len(replay.valid),
            timeout_s=300,
            what="all valid reviews in the cluster",
            worker=workers[0],
        )
        for worker in workers:
            assert worker.stop() == 0
    finally:
        for worker in workers:
            if worker.alive():
                worker.kill9()
    sync_replicas(clickhouse_cluster, config.clickhouse.clickhouse_database)
    check_outcome(config, replay, connect(config.clickhouse).query)


def produce_over(kafka: KafkaConfig, events: list[ReplayEvent], seconds: float) -> None:
    """``events`` in 30 chunks spread over about ``seconds``: a stream, not a backlog."""
    chunks = 30
    size = len(events) // chunks + 1
    for i in range(chunks):
        produce(kafka, events[i * size : (i + 1) * size])
        time.sleep(seconds / chunks)


def test_a_replica_stopped_mid_stream_loses_nothing_and_catches_up(
    make_config, clickhouse_cluster: LocalCluster, tmp_path: Path
):
    """The worker writes through s1r1; s2r2 (a replica of the other shard) stops while
    reviews arrive. Inserts go to s2r1 meanwhile, the stream does not stop, nothing is lost
    or counted twice, and s2r2 holds its shard's rows again once it is back."""
    config = worker_config(make_config, batch_size=64)
    replay = make_replay(2400, seed=22, config=config, malformed=0.05)
    stored = reviews_in_clickhouse(config)
    feeder = threading.Thread(target=produce_over, args=(config.kafka, replay.events, 30.0))
    worker = WorkerProcess(config, tmp_path / "worker.log")
    replica = "s2r2"
    stopped = False
    try:
        worker.start()
        feeder.start()
        wait_for(lambda: stored() >= 300, timeout_s=240, what="300 rows", worker=worker)
        clickhouse_cluster.stop_node(replica)
        stopped = True
        with_replica_down = stored()
        assert with_replica_down < len(replay.valid)  # mid-stream
        wait_for(
            lambda: stored() >= with_replica_down + 400,
            timeout_s=180,
            what="400 more rows with a replica down",
            worker=worker,
        )
        clickhouse_cluster.start_node(replica)
        stopped = False
        feeder.join(timeout=120)
        wait_for(
            lambda: stored() >= len(replay.valid),
            timeout_s=300,
            what="all valid reviews after the replica came back",
            worker=worker,
        )
        assert worker.stop() == 0
    finally:
        if stopped:
            clickhouse_cluster.start_node(replica)
        if worker.alive():
            worker.kill9()
        feeder.join(timeout=120)
    database = config.clickhouse.clickhouse_database
    sync_replicas(clickhouse_cluster, database)  # s2r2 fetches what it missed
    check_outcome(config, replay, connect(config.clickhouse).query)
    for table in ("reviews_local", "sentiment_minute_local", "traffic_minute_local"):
        counts = wait_replicated(clickhouse_cluster, database, table, timeout_s=120)
        assert counts[replica] == counts["s2r1"] > 0, table
    # the restarted replica alone, with the other shard, holds every review once
    shards = [
        node(clickhouse_cluster, name, database).execute("SELECT count() FROM reviews_local FINAL")[
            0
        ][0]
        for name in ("s1r1", replica)
    ]
    assert sum(shards) == len(replay.valid) and min(shards) > 0
