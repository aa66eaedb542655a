"""``reviewpulse produce`` against the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stream.config import PROJECT_ROOT
from tests.stream.harness import read_topic

pytestmark = pytest.mark.broker


def test_produce_replays_the_corpus_with_malformed_events(make_config, tmp_path: Path) -> None:
    config = make_config()
    manifest = tmp_path / "manifest.jsonl"
    command = "produce --count 120 --rate 0 --malformed-share 0.25 --seed 4 --id-prefix cli"
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", *command.split(), "--manifest", str(manifest)],
        cwd=PROJECT_ROOT,
        env=config.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "sent 120 events" in done.stdout
    lines = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 120
    bad = [line for line in lines if line["expected_reason"]]
    assert 10 < len(bad) < 60

    messages = read_topic(config.kafka.kafka_broker, config.kafka.input_topic, idle_s=1.0)
    assert len(messages) == 120
    partitions = {m.partition() for m in messages}
    assert len(partitions) > 1
    valid_ids = {line["review_id"] for line in lines if not line["expected_reason"]}
    for message in messages:  # keyed by product_id, so one product stays on one partition
        payload = json.loads(message.value()) if message.value().endswith(b"}") else None
        if isinstance(payload, dict) and payload.get("review_id") in valid_ids:
            assert message.key().decode() == payload["product_id"]
    by_key: dict[bytes, set[int]] = {}
    for message in messages:
        by_key.setdefault(message.key(), set()).add(message.partition())
    assert all(len(parts) == 1 for key, parts in by_key.items() if key is not None)
