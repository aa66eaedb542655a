"""Hourly baseline blocks, cached: a day of history is read once, then one hour per hour.

The baseline of an evaluation is the ``alert_baseline_hours`` whole hours before its minute
grid (``grid.MinuteGrid``). Hours that ended long enough before the watermark
(:data:`SETTLE`) no longer change and are kept; newer ones are read every time. Changing the
complaint lexicon empties the cache (complaint counts depend on it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from stream.reputation.grid import ProductHistory, merge_histories
from stream.reputation.lexicon import Lexicon

HOUR = timedelta(hours=1)
# An hour that ended this long before the watermark is treated as final.
SETTLE = timedelta(hours=1)

HourFetcher = Callable[[datetime, datetime, Lexicon], dict[datetime, dict[str, ProductHistory]]]


class BaselineCache:
    """Per-product history over whole hours, from ``fetch(start, end, lexicon)``."""

    def __init__(self, fetch: HourFetcher, *, keep_hours: int) -> None:
        self.fetch = fetch
        self.keep_hours = keep_hours
        self._hours: dict[datetime, dict[str, ProductHistory]] = {}
        self._lexicon: Lexicon | None = None

    def history(
        self, start: datetime, end: datetime, watermark: datetime, lexicon: Lexicon
    ) -> dict[str, ProductHistory]:
        """Summed history of the hours in ``[start, end)`` (both hour-aligned)."""
        if lexicon != self._lexicon:
            self._hours.clear()
            self._lexicon = lexicon
        wanted = []
        hour = start
        while hour < end:
            wanted.append(hour)
            hour += HOUR
        missing = [h for h in wanted if h not in self._hours]
        fresh: dict[datetime, dict[str, ProductHistory]] = {}
        if missing:
            fresh = self.fetch(missing[0], missing[-1] + HOUR, lexicon)
            for h in missing:
                if h + HOUR <= watermark - SETTLE:
                    self._hours[h] = fresh.get(h, {})
        for h in [h for h in self._hours if h < end - self.keep_hours * HOUR]:
            del self._hours[h]
        return merge_histories(
            self._hours[h] if h in self._hours else fresh.get(h, {}) for h in wanted
        )
