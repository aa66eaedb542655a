"""Hourly baseline blocks, cached: a day of history is read once, then one hour per hour.

The baseline of an evaluation is the ``alert_baseline_hours`` whole hours before its minute
grid (``grid.MinuteGrid``). Hours that ended long enough before the watermark
(:data:`SETTLE`) no longer change and are kept; newer ones are read every time. Review and
negative counts do not depend on the complaint lexicon; complaint counts do, and are read
again (from the smaller keyword table) when a relearned lexicon differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TypeVar

from stream.reputation.grid import ProductHistory
from stream.reputation.lexicon import Lexicon

HOUR = timedelta(hours=1)
# An hour that ended this long before the watermark is treated as final.
SETTLE = timedelta(hours=1)

V = TypeVar("V")
CountFetcher = Callable[[datetime, datetime], dict[datetime, dict[str, ProductHistory]]]
ComplaintFetcher = Callable[[datetime, datetime, Lexicon], dict[datetime, dict[str, int]]]


class _HourCache(dict[datetime, V]):
    """Settled hours of one kind of count."""

    def read(
        self,
        wanted: list[datetime],
        watermark: datetime,
        fetch: Callable[[datetime, datetime], Mapping[datetime, V]],
        empty: V,
    ) -> list[V]:
        missing = [h for h in wanted if h not in self]
        fresh: Mapping[datetime, V] = {}
        if missing:
            fresh = fetch(missing[0], missing[-1] + HOUR)
            for h in missing:
                if h + HOUR <= watermark - SETTLE:
                    self[h] = fresh.get(h, empty)
        return [self[h] if h in self else fresh.get(h, empty) for h in wanted]

    def forget_before(self, hour: datetime) -> None:
        for h in [h for h in self if h < hour]:
            del self[h]


class BaselineCache:
    """Per-product history over whole hours: ``counts(start, end)`` gives reviews and negative
    reviews per hour, ``complaints(start, end, lexicon)`` complaint reviews per hour."""

    def __init__(
        self, counts: CountFetcher, complaints: ComplaintFetcher, *, keep_hours: int
    ) -> None:
        self.fetch_counts = counts
        self.fetch_complaints = complaints
        self.keep_hours = keep_hours
        self._counts: _HourCache[dict[str, ProductHistory]] = _HourCache()
        self._complaints: _HourCache[dict[str, int]] = _HourCache()
        self._lexicon: Lexicon | None = None

    def history(
        self, start: datetime, end: datetime, watermark: datetime, lexicon: Lexicon
    ) -> dict[str, ProductHistory]:
        """Summed history of the hours in ``[start, end)`` (both hour-aligned)."""
        if lexicon != self._lexicon:
            self._complaints.clear()
            self._lexicon = lexicon
        wanted = []
        hour = start
        while hour < end:
            wanted.append(hour)
            hour += HOUR
        counts = self._counts.read(wanted, watermark, self.fetch_counts, {})
        complaints = self._complaints.read(
            wanted, watermark, lambda a, b: self.fetch_complaints(a, b, lexicon), {}
        )
        for cache in (self._counts, self._complaints):
            cache.forget_before(end - self.keep_hours * HOUR)
        merged: dict[str, list] = {}
        for hour_counts in counts:
            for product, h in hour_counts.items():
                entry = merged.setdefault(product, [h.category, 0, 0, 0])
                entry[1] += h.total
                entry[2] += h.negative
        for hour_complaints in complaints:
            for product, n in hour_complaints.items():
                merged.setdefault(product, ["", 0, 0, 0])[3] += n
        return {p: ProductHistory(c, t, n, k) for p, (c, t, n, k) in merged.items()}
