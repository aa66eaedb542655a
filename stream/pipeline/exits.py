"""How the worker stops when a batch cannot be made durable.

Exit codes of a hard stop: the batch in hand is NOT acked, so its offsets never commit and the
next worker re-reads it (idempotent sinks absorb the repeat).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn

log = logging.getLogger(__name__)

EXIT_SINK_DOWN = 70  # ClickHouse insert, produce or model kept failing after all retries
EXIT_DLQ_LIMIT = 71  # nearly everything was being dead-lettered: a bad deploy, not bad data
EXIT_BATCH_ERROR = 72  # an unexpected error inside the batch body
EXIT_INTERRUPTED = 75  # cancelled (shutdown) in the middle of a batch

Stop = Callable[[int, str], NoReturn]
"""``stop(code, message)``: leave without acking the batch in hand (tests pass a fake)."""


def hard_stop(code: int, message: str) -> NoReturn:
    """Log, flush and leave the process at once: no ``finally:`` runs, so ``take()`` cannot
    ack the batch in hand and no further offset commit happens."""
    log.critical("%s (exit code %d)", message, code)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
