"""The pipelined worker on the real broker and a real, slow ClickHouse (issue 12): the worker
as a subprocess, a backlog on the input topic, and a materialized view that makes every
insert into ``reviews`` sleep. The ClickHouse insert is then the bottleneck, so the in-flight
window fills and the agent stops taking: the backlog waits in Kafka (and Faust's fetch buffer,
bounded by stream-buffer-maxsize), not in batches held by the worker.

Sampled all along from the worker's /metrics and the group's committed offsets:
- batches in flight never exceed ``max-inflight-batches``, and the messages taken but not
  yet durable never exceed that many batches;
- the committed offsets never pass the rows in ClickHouse (acked only once durable);
- the agent waited for room (backpressure), and the worker's memory stays bounded.
At the end every review is stored once with exact aggregates (``check_outcome``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.metrics import read_samples
from stream.sink.connection import connect
from stream.sink.migrations import migrate
from tests.stream.harness import WorkerProcess, committed_total, produce, wait_for
from tests.stream.test_pipeline import check_outcome, make_replay, worker_config

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse, pytest.mark.slow]

LIMIT = 2
BATCH = 32
EVENTS = 1200
SLEEP_S = 0.2  # per insert block: far slower than classifying a batch of 32
RSS_LIMIT = 1.5 * 2**30  # issue 12's worker RSS target


def sample(text: str, name: str) -> float:
    return sum(read_samples(text, name).values())


def test_a_slow_clickhouse_holds_the_worker_at_its_in_flight_limit(
    make_config, tmp_path: Path
) -> None:
    config = worker_config(make_config, batch_size=BATCH, max_inflight_batches=LIMIT)
    replay = make_replay(EVENTS, seed=21, config=config, malformed=0.0)
    ch = connect(config.clickhouse)
    migrate(ch)
    ch.execute("CREATE TABLE slow_insert (x UInt8) ENGINE = Null")
    ch.execute(
        "CREATE MATERIALIZED VIEW slow_insert_mv TO slow_insert "
        f"AS SELECT toUInt8(sleep({SLEEP_S})) AS x FROM reviews"
    )
    produce(config.kafka, replay.events)  # the whole backlog, up front
    worker = WorkerProcess(config, tmp_path / "worker.log").start()
    samples: list[dict[str, float]] = []
    try:

        def check() -> bool:
            try:
                text = worker.metrics_text()
            except OSError:  # not serving yet
                return False
            committed = committed_total(config.kafka)  # before the rows: they only grow
            stored = ch.query("SELECT count() FROM reviews")[0][0]
            taken = sample(text, "reviewpulse_events_consumed_total")
            durable = sample(text, "reviewpulse_events_processed_total")
            now = {
                "in_flight": sample(text, "reviewpulse_batches_in_flight"),
                "not_durable": taken - durable,
                "left_in_kafka": EVENTS - taken,  # not taken by the agent yet
                "committed": committed,
                "stored": stored,
                "rss": sample(text, "process_resident_memory_bytes"),
            }
            samples.append(now)
            assert now["in_flight"] <= LIMIT, now
            assert now["not_durable"] <= LIMIT * BATCH, now
            assert committed <= stored, now  # no offset commits ahead of its rows
            assert now["rss"] <= RSS_LIMIT, now
            return durable >= EVENTS

        wait_for(check, timeout_s=300, what="all processed", worker=worker, interval_s=0.1)
        text = worker.metrics_text()
        assert sample(text, "reviewpulse_backpressure_seconds_total") > 0
        wait_for(
            lambda: committed_total(config.kafka) == EVENTS, timeout_s=30, what="all committed"
        )
        assert worker.stop() == 0
    finally:
        if worker.alive():
            worker.kill9()
    # The window was full while most of the backlog was not taken: the worker stopped taking.
    assert any(s["in_flight"] == LIMIT and s["left_in_kafka"] > EVENTS // 2 for s in samples)
    check_outcome(config, replay, ch.query)
