"""Per-minute counts in event time, and which minutes to evaluate. Pure: numpy only.

The engine evaluates minute buckets of event time (``created_at``), anchored at the
*watermark*: the newest minute bucket the pipeline has processed, never ahead of the wall
clock. Consumer lag therefore delays an evaluation but cannot hide an incident: when the
backlog is processed, its minutes are evaluated in order (:func:`plan_steps`).

:class:`MinuteGrid` holds the counts of every product over consecutive minute buckets plus
its history before them; :meth:`MinuteGrid.step` cuts the windows of one step out of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from stream.reputation.rules import Counts, StepCounts

MINUTE = timedelta(minutes=1)
# Every evaluation looks again at this many minutes before the last one evaluated, so that
# data arriving a little late (a slower partition) is judged at its own event time.
REEVALUATE = timedelta(minutes=10)
# Most minute buckets one evaluation steps through; a longer backlog continues next time.
MAX_STEPS = 120
# A gap longer than this (the engine down for a day) is skipped rather than replayed; the
# incidents open before it are kept open across it.
MAX_CATCHUP = timedelta(hours=24)


def floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def floor_hour(moment: datetime) -> datetime:
    return floor_minute(moment).replace(minute=0)


@dataclass(frozen=True)
class StepPlan:
    """The minute buckets one evaluation steps through, and any event time it skips."""

    buckets: tuple[datetime, ...]
    skipped: tuple[datetime, datetime] | None = None  # [since, until) not evaluated

    @property
    def first(self) -> datetime | None:
        return self.buckets[0] if self.buckets else None

    @property
    def last(self) -> datetime | None:
        return self.buckets[-1] if self.buckets else None


def plan_steps(
    evaluated_until: datetime | None, watermark: datetime | None, longest_window: int
) -> StepPlan:
    """Buckets to evaluate: from :data:`REEVALUATE` before the last evaluated bucket (or, on
    the very first run, one longest window before the watermark) up to the watermark, at
    most :data:`MAX_STEPS` of them."""
    if watermark is None:
        return StepPlan(())
    skipped = None
    if evaluated_until is None:
        first = watermark - (longest_window - 1) * MINUTE
    elif watermark - evaluated_until > MAX_CATCHUP:
        first = watermark - MAX_CATCHUP
        skipped = (evaluated_until, first)
    else:
        first = min(evaluated_until, watermark) - REEVALUATE
    last = min(watermark, first + (MAX_STEPS - 1) * MINUTE)
    count = int((last - first) / MINUTE) + 1
    return StepPlan(tuple(first + i * MINUTE for i in range(count)), skipped)


@dataclass(frozen=True)
class ProductHistory:
    """One product's counts over some span: reviews, negative, negative with complaints."""

    category: str
    total: int = 0
    negative: int = 0
    complaint: int = 0

    def plus(self, other: ProductHistory) -> ProductHistory:
        return ProductHistory(
            self.category or other.category,
            self.total + other.total,
            self.negative + other.negative,
            self.complaint + other.complaint,
        )


def merge_histories(parts: Iterable[Mapping[str, ProductHistory]]) -> dict[str, ProductHistory]:
    merged: dict[str, ProductHistory] = {}
    for part in parts:
        for product, history in part.items():
            current = merged.get(product)
            merged[product] = history if current is None else current.plus(history)
    return merged


@dataclass(frozen=True)
class ProductMinutes:
    """One product's counts per minute bucket (the ClickHouse rows, one array per column):
    ``minutes`` are the buckets' Unix seconds; ``complaint`` may be left empty."""

    product_id: str
    category: str
    minutes: Sequence[int]
    total: Sequence[int]
    negative: Sequence[int]
    complaint_minutes: Sequence[int] = ()
    complaint: Sequence[int] = ()


def _place(target: np.ndarray, row: int, minutes: Sequence[int], values: Sequence[int], start: int):
    if len(minutes):
        columns = (np.asarray(minutes, dtype=np.int64) - start) // 60
        keep = (columns >= 0) & (columns < target.shape[1])
        np.add.at(target[row], columns[keep], np.asarray(values, dtype=float)[keep])


class MinuteGrid:
    """Counts of every product over the minute buckets ``start .. start + T - 1``, and each
    product's history (the baseline before ``start``)."""

    def __init__(
        self,
        start: datetime,
        minutes: int,
        series: Iterable[ProductMinutes],
        history: Mapping[str, ProductHistory],
    ) -> None:
        self.start = start
        self.minutes = minutes
        categories: dict[str, str] = {p: h.category for p, h in history.items()}
        rows = list(series)
        for row in rows:
            categories.setdefault(row.product_id, row.category)
        self.products: list[str] = sorted(categories)
        self.categories: list[str] = [categories[p] for p in self.products]
        index = {product: i for i, product in enumerate(self.products)}
        shape = (len(self.products), minutes)
        total, negative, complaint = (np.zeros(shape) for _ in range(3))
        origin = int(start.timestamp())
        for row in rows:
            i = index[row.product_id]
            _place(total, i, row.minutes, row.total, origin)
            _place(negative, i, row.minutes, row.negative, origin)
            _place(complaint, i, row.complaint_minutes, row.complaint, origin)
        empty = ProductHistory("")
        base = [history.get(p, empty) for p in self.products]
        self._history = {
            "total": np.array([h.total for h in base], dtype=float),
            "negative": np.array([h.negative for h in base], dtype=float),
            "complaint": np.array([h.complaint for h in base], dtype=float),
        }
        self._cumulative = {
            name: np.concatenate([np.zeros((shape[0], 1)), np.cumsum(values, axis=1)], axis=1)
            for name, values in (("total", total), ("negative", negative), ("complaint", complaint))
        }

    def step(self, bucket: datetime, windows: Sequence[int], end: datetime) -> StepCounts:
        """Counts of the windows ending with minute ``bucket`` (``end``: when that bucket's
        data ends, the wall clock for a bucket still filling)."""
        last = int((bucket - self.start) / MINUTE) + 1
        if not 0 < last <= self.minutes:
            raise ValueError(f"bucket {bucket} is outside the grid")
        starts = [max(last - w, 0) for w in windows]

        def cut(name: str) -> tuple[np.ndarray, np.ndarray]:
            cumulative = self._cumulative[name]
            window = np.stack([cumulative[:, last] - cumulative[:, s] for s in starts], axis=1)
            before = np.stack([cumulative[:, s] for s in starts], axis=1)
            return window, before + self._history[name][:, None]

        total, base_total = cut("total")
        negative, base_negative = cut("negative")
        complaint, base_complaint = cut("complaint")
        return StepCounts(
            end=end,
            products=self.products,
            categories=self.categories,
            negative=Counts(negative, total, base_negative, base_total),
            complaint=Counts(complaint, total, base_complaint, base_total),
        )
