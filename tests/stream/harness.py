"""Test harness for the worker: run it as a real subprocess, feed and read real topics."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from stream.local.processes import stop_process
from stream.replay import ReplayEvent
from stream.settings import PROJECT_ROOT, Settings, settings_env
from stream.worker_cli import producer_config


class WorkerProcess:
    """``python -m stream.cli worker`` with the given settings, logging to ``log_path``."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"],
            cwd=PROJECT_ROOT,
            env=settings_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def url(self, path: str) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}{path}"

    def get_json(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def post_json(self, path: str, body: Any) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url(path), data=json.dumps(body).encode(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.url("/metrics"), timeout=5) as response:
            return response.read().decode()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        assert self.process is not None
        stop_process(self.process, grace_s=30)
        return self.process.returncode

    def wait_exit(self, timeout_s: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    worker: WorkerProcess | None = None,
    interval_s: float = 0.5,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if worker is not None and not worker.alive():
            raise AssertionError(
                f"worker exited ({worker.process.returncode}) while waiting for {what}:\n"
                + worker.log_tail()
            )
        time.sleep(interval_s)
    tail = worker.log_tail() if worker else ""
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n{tail}")


def produce(settings: Settings, events: Iterable[ReplayEvent]) -> int:
    producer = Producer(producer_config(settings))
    errors: list[Any] = []
    count = 0
    for event in events:
        while True:
            try:
                producer.produce(
                    settings.input_topic,
                    event.value,
                    event.key,
                    on_delivery=lambda err, _msg: errors.append(err) if err else None,
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        count += 1
    assert producer.flush(60) == 0
    assert errors == []
    return count


def read_topic(bootstrap: str, topic: str, *, idle_s: float = 2.0) -> list[Any]:
    """Every message of ``topic`` from the beginning, until nothing new arrives for ``idle_s``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = metadata.topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    messages = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_s:
            batch = consumer.consume(1000, timeout=0.2)
            for message in batch:
                if message.error() is None:
                    messages.append(message)
            if batch:
                last = time.monotonic()
    finally:
        consumer.close()
    return messages


def committed_total(settings: Settings) -> int:
    """Sum of the committed offsets of the worker's group on the input topic."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_broker, "group.id": settings.app_id})
    try:
        metadata = consumer.list_topics(settings.input_topic, timeout=10)
        partitions = [
            TopicPartition(settings.input_topic, p)
            for p in metadata.topics[settings.input_topic].partitions
        ]
        committed = consumer.committed(partitions, timeout=10)
        return sum(max(tp.offset, 0) for tp in committed)
    finally:
        consumer.close()
