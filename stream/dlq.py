"""Dead-letter records and the dead-letter limit. Pure.

A dead-letter message's value is a ``dead_letter.v1`` JSON record that keeps the original key,
value and headers (base64) plus the reason; its Kafka headers repeat reason, topic, partition
and offset so tools can route on them without parsing the value.

A record always fits a 1 MB Kafka message (``MAX_RECORD_BYTES``), whatever came in: the value
is cut at ``MAX_KEPT_VALUE_BYTES`` (``value_truncated``), the key at ``MAX_KEPT_KEY_BYTES``,
the detail at ``MAX_DETAIL_CHARS``, and headers are kept in order while they fit the rest of
the budget (``headers_truncated``; the detail says how many were dropped). The reason and the
original position are never cut. Strings from the input that are not Unicode (lone
surrogates) are kept escaped, so the record can always be encoded.
"""

from __future__ import annotations

import base64
import json
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from stream.events import (
    SCHEMA_VERSION,
    DeadLetter,
    DeadLetterHeader,
    format_timestamp,
    to_json_bytes,
)
from stream.validation import InvalidEvent

HEADER_PREFIX = "reviewpulse-dlq-"
MAX_KEPT_VALUE_BYTES = 512 * 1024
"""Raw value bytes kept per record (base64 makes them 683 KiB)."""
MAX_KEPT_KEY_BYTES = 16 * 1024
MAX_DETAIL_CHARS = 2000
MAX_HEADER_KEY_CHARS = 256
MAX_RECORD_BYTES = 1_000_000
"""Largest encoded record, with room for the Kafka headers under the broker's 1 MiB default."""


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _b64_len(size: int) -> int:
    return 4 * math.ceil(size / 3)


def safe_text(text: str, limit: int | None = None) -> str:
    """``text`` cut to ``limit`` characters, lone surrogates escaped (``\\ud800``)."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _fit_headers(
    headers: Sequence[tuple[str, bytes | None]], budget: int
) -> tuple[list[DeadLetterHeader], int]:
    """Headers in order while their encoded size fits ``budget``; and how many were dropped."""
    kept: list[DeadLetterHeader] = []
    used = 0
    for number, (key, value) in enumerate(headers):
        name = safe_text(str(key), MAX_HEADER_KEY_CHARS)
        cost = len(json.dumps(name, ensure_ascii=False).encode()) + 32
        cost += 0 if value is None else _b64_len(len(value))
        if used + cost > budget:
            return kept, len(headers) - number
        kept.append(DeadLetterHeader(key=name, value_b64=_b64(value)))
        used += cost
    return kept, 0


def build_dead_letter(
    invalid: InvalidEvent,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]],
    failed_at: datetime,
    max_value_bytes: int = MAX_KEPT_VALUE_BYTES,
) -> DeadLetter:
    """The record for ``invalid``, encoded size at most :data:`MAX_RECORD_BYTES`."""
    value = value or b""
    truncated = len(value) > max_value_bytes
    notes = []
    if truncated:
        notes.append(f"only the first {max_value_bytes} of {len(value)} bytes are kept")
        value = value[:max_value_bytes]
    if key is not None and len(key) > MAX_KEPT_KEY_BYTES:
        notes.append(f"only the first {MAX_KEPT_KEY_BYTES} of {len(key)} key bytes are kept")
        key = key[:MAX_KEPT_KEY_BYTES]
    record = DeadLetter(
        schema_version=SCHEMA_VERSION,
        reason=invalid.reason_code,
        detail=safe_text(invalid.detail, MAX_DETAIL_CHARS),
        topic=safe_text(topic, 512),
        partition=partition,
        offset=offset,
        key_b64=_b64(key),
        value_b64=_b64(value) or "",
        value_truncated=truncated,
        headers=[],
        review_id=None if invalid.review_id is None else safe_text(invalid.review_id, 128),
        failed_at=format_timestamp(failed_at),
    )
    room = MAX_RECORD_BYTES - len(to_json_bytes(record)) - 400  # 400: the notes below
    kept, dropped = _fit_headers(headers, room)
    if dropped:
        notes.append(
            f"{dropped} of {len(headers)} headers dropped to keep the record under "
            f"{MAX_RECORD_BYTES} bytes"
        )
    detail = record.detail + (f" ({'; '.join(notes)})" if notes else "")
    return replace(record, detail=detail, headers=kept, headers_truncated=bool(dropped))


def dead_letter_headers(record: DeadLetter) -> list[tuple[str, bytes]]:
    """Kafka headers for the dead-letter message."""
    return [
        (HEADER_PREFIX + "reason", record.reason.encode()),
        (HEADER_PREFIX + "topic", record.topic.encode()),
        (HEADER_PREFIX + "partition", str(record.partition).encode()),
        (HEADER_PREFIX + "offset", str(record.offset).encode()),
    ]


def original_value(record: DeadLetter) -> bytes:
    """The raw bytes that were rejected."""
    return base64.b64decode(record.value_b64)


class DlqLimit:
    """Trips when at least ``ratio`` of the last ``window`` events were dead-lettered.

    It only judges a full window, so a few bad events at start-up cannot stop the worker.
    Once tripped it stays tripped: the worker stops without acking the batch.
    """

    def __init__(self, ratio: float, window: int) -> None:
        if not 0 < ratio <= 1 or window < 1:
            raise ValueError("ratio must be in (0, 1] and window >= 1")
        self.ratio = ratio
        self.window = window
        self._recent: deque[bool] = deque(maxlen=window)
        self._dead = 0
        self.threshold = max(1, math.ceil(ratio * window - 1e-9))
        self.tripped = False

    @property
    def dead_share(self) -> float:
        return self._dead / len(self._recent) if self._recent else 0.0

    def record(self, dead_lettered: bool) -> bool:
        """Count one event; returns True when the limit is (or already was) tripped."""
        if len(self._recent) == self.window and self._recent[0]:
            self._dead -= 1
        self._recent.append(dead_lettered)
        self._dead += dead_lettered
        if len(self._recent) == self.window and self._dead >= self.threshold:
            self.tripped = True
        return self.tripped

    def record_batch(self, outcomes: Sequence[bool]) -> bool:
        for dead in outcomes:
            self.record(dead)
        return self.tripped

    def outcomes(self) -> list[bool]:
        """The window, oldest first (what :meth:`restore` takes back after a restart)."""
        return list(self._recent)

    def restore(self, outcomes: Sequence[bool]) -> None:
        """Continue from a saved window (the newest ``window`` outcomes are kept), so a
        restart does not wipe the evidence: a tripped limit stays tripped."""
        self._recent.clear()
        self._dead = 0
        self.tripped = False
        self.record_batch(list(outcomes)[-self.window :])
