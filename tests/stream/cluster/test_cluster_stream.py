"""Two workers stream into the replicated, sharded cluster: every valid review exactly once
through the Distributed tables (FINAL), every malformed one dead-lettered, and the per-minute
aggregates equal the counts from the input (tests.stream.test_pipeline.check_outcome)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.local.processes import free_port
from stream.sink.connection import connect
from tests.stream.harness import WorkerProcess, produce, wait_for
from tests.stream.test_pipeline import (
    check_outcome,
    make_replay,
    reviews_in_clickhouse,
    worker_config,
)

pytestmark = [pytest.mark.broker, pytest.mark.cluster, pytest.mark.slow]


def test_two_workers_on_the_cluster_store_every_review_once(make_config, tmp_path: Path):
    config = worker_config(make_config)
    replay = make_replay(2000, seed=21, config=config, malformed=0.05)
    produce(config.kafka, replay.events)
    workers = [
        WorkerProcess(config.replace(web_port=free_port()), tmp_path / f"worker{i}.log")
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
    check_outcome(config, replay, connect(config.clickhouse).query)
