"""Dead-letter records and the dead-letter limit. Pure.

A dead-letter message's value is a ``dead_letter.v1`` JSON record that keeps the original key,
value and headers (base64) plus the reason; its Kafka headers repeat reason, topic, partition
and offset so tools can route on them without parsing the value.
"""

from __future__ import annotations

import base64
import math
from collections import deque
from collections.abc import Sequence
from datetime import datetime

from stream.events import SCHEMA_VERSION, DeadLetter, DeadLetterHeader, format_timestamp
from stream.validation import InvalidEvent

HEADER_PREFIX = "reviewpulse-dlq-"
MAX_KEPT_VALUE_BYTES = 512 * 1024
"""Raw bytes kept per record: base64 of this plus the rest stays under Kafka's 1 MB default."""


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


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
    value = value or b""
    truncated = len(value) > max_value_bytes
    detail = invalid.detail
    if truncated:
        detail += f" (only the first {max_value_bytes} of {len(value)} bytes are kept)"
        value = value[:max_value_bytes]
    return DeadLetter(
        schema_version=SCHEMA_VERSION,
        reason=invalid.reason_code,
        detail=detail,
        topic=topic,
        partition=partition,
        offset=offset,
        key_b64=_b64(key),
        value_b64=_b64(value) or "",
        value_truncated=truncated,
        headers=[DeadLetterHeader(key=k, value_b64=_b64(v)) for k, v in headers],
        review_id=invalid.review_id,
        failed_at=format_timestamp(failed_at),
    )


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
