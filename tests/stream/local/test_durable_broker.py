"""Tansu on an S3 server keeps records and committed offsets across a broker restart, graceful
or ``kill -9``, with clients connected (the fault suite's broker rows depend on it).

What the control experiment (``python -m bench.broker_restart``: plain subprocesses and
confluent-kafka clients, no ReviewPulse code) found: the loss seen earlier on s3rver came
from s3rver ignoring conditional writes, which Tansu relies on for each partition's next
offset, not from the kill and not from the worker. On a server that honours them nothing
acknowledged is lost either way."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from bench import broker_restart
from stream.local.s3 import INSTALL_HINT, S3Server, s3_server_available
from stream.local.tansu import TansuBroker

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(not s3_server_available(), reason=INSTALL_HINT),
]


def test_the_s3_server_honours_conditional_writes(tmp_path: Path) -> None:
    """The writes Tansu makes to a partition's watermark object: create only if absent,
    update only the version it read. Either one over a stale view must fail (412), so the
    broker reads the object again instead of overwriting it."""
    import boto3
    from botocore.exceptions import ClientError

    with S3Server(tmp_path / "s3") as s3:
        env = s3.client_env()
        client = boto3.client(
            "s3",
            endpoint_url=s3.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )
        where = {"Bucket": s3.bucket, "Key": "topics/t/partitions/0/watermark.json"}
        first = client.put_object(**where, Body=b'{"high":40}', IfNoneMatch="*")["ETag"]
        second = client.put_object(**where, Body=b'{"high":41}', IfMatch=first)["ETag"]
        assert second != first
        for stale in ({"IfNoneMatch": "*"}, {"IfMatch": first}):
            with pytest.raises(ClientError) as refused:
                client.put_object(**where, Body=b'{"high":0}', **stale)
            assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
        assert client.get_object(**where)["Body"].read() == b'{"high":41}'


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


def test_records_and_commits_survive_a_quiet_restart(tmp_path: Path) -> None:
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
            broker.restart()  # same port, same bucket
            # The first request after the restart is a produce. On a server that ignored
            # If-None-Match it would create the watermark afresh and land at offset 0.
            late = Producer({"bootstrap.servers": broker.bootstrap})
            delivered = []
            late.produce("durable", value=b"late", on_delivery=lambda e, m: delivered.append(m))
            assert late.flush(10) == 0
            second = consumer(broker.bootstrap)
            [committed] = second.committed([TopicPartition("durable", 0)], timeout=10)
            assert committed.offset == 40
            second.assign([TopicPartition("durable", 0, committed.offset)])
            rest = []
            while len(rest) < 61 and (batch := second.consume(61, timeout=5)):
                rest += [m.value() for m in batch if m.error() is None]
            second.close()
    assert [m.offset() for m in delivered] == [100]
    assert rest == [f"v{i}".encode() for i in range(40, 100)] + [b"late"]


@pytest.mark.slow
@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "sigkill"])
def test_a_restart_under_load_keeps_every_acknowledged_record_and_commit(
    tmp_path: Path, hard: bool
) -> None:
    """The control experiment on the project's broker tooling: an ``acks=all`` producer and
    a committing group member stay connected while the broker stops (SIGTERM and wait, or
    SIGKILL) and starts again halfway through the feed."""
    args = broker_restart.parse_args(["--records", "3000", "--rate", "1000"])
    with S3Server(tmp_path / "s3") as s3:
        broker = TansuBroker(
            log_path=tmp_path / "tansu.log", storage=s3.storage_url, env=s3.client_env()
        )
        with broker:
            outcome = broker_restart.exercise(
                broker.bootstrap,
                halt=lambda: broker.halt(hard=hard),
                start=broker.start,
                args=args,
            )
    assert outcome.produce_errors == 0
    assert outcome.acked == 3000
    assert 0 < outcome.acked_before_stop < 3000  # the restart came in the middle of the feed
    assert outcome.commits_before_stop  # ... after the group had committed
    assert (outcome.lost, outcome.overwritten) == (0, 0)  # a retried batch may land twice
    assert outcome.rewound == 0
    # The member may commit again between the reading before the stop and the stop itself,
    # so the offsets after the restart are at least, not exactly, those read before it.
    before, after = outcome.commits_before_stop, outcome.commits_after_restart
    assert set(after) >= set(before)
    assert all(after[partition] >= offset for partition, offset in before.items())
    assert outcome.group_missed == 0
