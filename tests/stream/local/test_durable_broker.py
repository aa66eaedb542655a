"""Tansu on s3rver keeps records and committed offsets across a broker restart (the fault
suite's broker-restart row depends on it). Skipped where s3rver is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from stream.local.s3 import INSTALL_HINT, S3Server, s3rver_available
from stream.local.tansu import TansuBroker

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(not s3rver_available(), reason=INSTALL_HINT),
]


def consumer(bootstrap: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "durable",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,  # Tansu joins take about half of it (defect C)
        }
    )


def test_records_and_commits_survive_a_restart(tmp_path: Path) -> None:
    with S3Server(tmp_path / "s3") as s3:
        broker = TansuBroker(
            log_path=tmp_path / "tansu.log", storage=s3.storage_url, env=s3.client_env()
        )
        with broker:
            broker.create_topics(["durable"], partitions=1)
            producer = Producer({"bootstrap.servers": broker.bootstrap})
            for i in range(100):
                producer.produce("durable", value=f"v{i}".encode())
            assert producer.flush(10) == 0
            first = consumer(broker.bootstrap)
            first.assign([TopicPartition("durable", 0, 0)])
            got = first.consume(40, timeout=10)
            assert [m.value() for m in got] == [f"v{i}".encode() for i in range(40)]
            first.commit(offsets=[TopicPartition("durable", 0, 40)], asynchronous=False)
            first.close()
            broker.stop()
            broker.start()  # same port, same bucket
            second = consumer(broker.bootstrap)
            [committed] = second.committed([TopicPartition("durable", 0)], timeout=10)
            assert committed.offset == 40
            second.assign([TopicPartition("durable", 0, committed.offset)])
            rest = []
            while len(rest) < 60 and (batch := second.consume(60, timeout=5)):
                rest += [m.value() for m in batch if m.error() is None]
            second.close()
    assert rest == [f"v{i}".encode() for i in range(40, 100)]
