"""Simulation harness for the alert rules: detection delay, misses and false alerts.

    .venv/bin/python -m bench.alerts [--seed 1] [--steady-products 2000] [--hours 24]
                                     [--incidents 200] [--no-sweep] [alert config flags]

Drives the real rules (``stream.reputation.rules.evaluate_step`` and the incident tracker,
with ``RuleSettings.from_config`` of the alert settings given here) over synthetic event
streams, one evaluation every ``--alert-interval-s`` of event time, each seeing the minute
buckets up to that moment (the current one still filling), exactly as the engine does when
it keeps up with the stream:

* steady products: 0.2-20 reviews a minute (log-uniform), a true negative share of 5-40%,
  20-60% of negative reviews with complaint words, daily seasonality of volume (+-50%) and of
  the negative share (+-10%), and an hourly random wobble of the share (lognormal, 10%);
  24 h of history first, then ``--hours`` evaluated;
* incidents: a product at 6 reviews a minute and 15% negative turns to 40%, 50%, 60% or 85%
  negative for an hour, its negative reviews mostly with complaint words (80%); one row
  without complaint words shows the negative-share rule alone; extra rows at 1 and 20
  reviews a minute;
* new products: no history, then 1-5 negative reviews with complaint words in 10 minutes;
* the served model's confusion rates (from its model card, validation split) turn true
  labels into the predicted labels the rules see.

Prints a table per scenario (median and p90 detection delay, miss rate, share critical),
the false alerts per 1,000 steady product-hours, new-product and category false alerts,
and a sweep of the main thresholds; writes everything as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from model.registry import resolve_model_dir
from stream.config import PROJECT_ROOT, AlertConfig, ModelConfig, add_config_arguments, resolve
from stream.reputation.detector import DetectorSettings
from stream.reputation.incidents import IncidentTracker
from stream.reputation.rules import (
    Counts,
    RuleSettings,
    StepCounts,
    SubjectType,
    evaluate_step,
)

CARD_FILE = "reviewpulse.json"
CATEGORIES = 10
EPOCH = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, 00:00 UTC: the simulated day starts here
INCIDENT_SIZES = (0.40, 0.50, 0.60, 0.85)
BASE_SHARE = 0.15
INCIDENT_MINUTES = 60
INCIDENT_COMPLAINT_SHARE = 0.8
FALSE_POSITIVE_COMPLAINT_SHARE = 0.1  # complaint words in positive reviews predicted negative
DEFAULT_JSON = PROJECT_ROOT / ".data" / "bench" / "alerts.json"


# --- the served model -----------------------------------------------------------------------


@dataclass(frozen=True)
class Confusion:
    """P(predicted negative | truly negative) and P(predicted negative | truly positive)."""

    tpr: float
    fpr: float
    source: str


def served_confusion(model: ModelConfig) -> Confusion:
    """The served model's rates on its validation split, from its model card.

    The card has the binary confusion matrix and the neutral band (share of reviews inside
    it and accuracy there); a review in the band is served as neutral, not negative. Assumes
    the band holds the same share of each class, with its accuracy inside it."""
    directory = resolve_model_dir(model.model_registry, model.model_name, model.model_version)
    card = json.loads((directory / CARD_FILE).read_text(encoding="utf-8"))
    matrix = card["metrics"]["validation"]["confusion_matrix"]
    labels = matrix["labels"]
    rows = matrix["rows_true_cols_predicted"]
    neg, pos = labels.index("negative"), labels.index("positive")
    band = card["neutral_band"]
    share, inside = band["validation_share"], band["validation_accuracy_inside"]
    binary_tpr = rows[neg][neg] / sum(rows[neg])
    binary_fpr = rows[pos][neg] / sum(rows[pos])
    return Confusion(
        tpr=round(binary_tpr - share * inside, 4),
        fpr=round(max(binary_fpr - share * (1 - inside), 0.0), 4),
        source=f"{directory.name} (validation, neutral band {share:.1%})",
    )


# --- synthetic streams ------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """Simulated time in slots of one evaluation interval."""

    slot_s: int

    @property
    def per_minute(self) -> int:
        return 60 // self.slot_s

    def slots(self, minutes: float) -> int:
        return round(minutes * self.per_minute)

    def at(self, slot: int) -> datetime:
        return EPOCH + timedelta(seconds=slot * self.slot_s)

    def hour_of_day(self, slots: int) -> np.ndarray:
        return (np.arange(slots) * self.slot_s / 3600.0) % 24


@dataclass
class Streams:
    """Per-slot counts of S products: reviews, predicted negative, predicted complaint."""

    total: np.ndarray
    negative: np.ndarray
    complaint: np.ndarray
    category: np.ndarray
    names: list[str]

    @classmethod
    def concat(cls, parts: Sequence[Streams]) -> Streams:
        return cls(
            np.concatenate([p.total for p in parts]),
            np.concatenate([p.negative for p in parts]),
            np.concatenate([p.complaint for p in parts]),
            np.concatenate([p.category for p in parts]),
            [name for p in parts for name in p.names],
        )


def _classify(
    rng: np.random.Generator,
    total: np.ndarray,
    true_negative: np.ndarray,
    complaint_share: np.ndarray,
    confusion: Confusion,
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted negative and predicted-negative-with-complaint-words counts."""
    caught = rng.binomial(true_negative, confusion.tpr)
    wrong = rng.binomial(total - true_negative, confusion.fpr)
    complaint = rng.binomial(caught, complaint_share) + rng.binomial(
        wrong, FALSE_POSITIVE_COMPLAINT_SHARE
    )
    return (caught + wrong).astype(np.int32), complaint.astype(np.int32)


def _seasonal(clock: Clock, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Volume (peak 20:00, trough 08:00) and negative-share (peak 03:00) multipliers."""
    hour = clock.hour_of_day(slots)
    volume = 1 + 0.5 * np.sin(2 * np.pi * (hour - 14) / 24)
    share = 1 + 0.1 * np.sin(2 * np.pi * (hour - 21) / 24)
    return volume, share


def _wobble(rng: np.random.Generator, clock: Clock, products: int, slots: int) -> np.ndarray:
    hours = slots * clock.slot_s // 3600 + 1
    noise = np.exp(rng.normal(0.0, 0.1, (products, hours)))
    return noise[:, (np.arange(slots) * clock.slot_s) // 3600]


def steady_streams(
    rng: np.random.Generator, clock: Clock, products: int, slots: int, confusion: Confusion
) -> Streams:
    rate = np.exp(rng.uniform(np.log(0.2), np.log(20.0), products))
    share = rng.uniform(0.05, 0.40, products)
    complaint = rng.uniform(0.2, 0.6, products)
    volume, season = _seasonal(clock, slots)
    total = rng.poisson(rate[:, None] * volume[None, :] / clock.per_minute).astype(np.int32)
    p = np.clip(share[:, None] * season[None, :] * _wobble(rng, clock, products, slots), 0, 0.95)
    negative, complaints = _classify(
        rng, total, rng.binomial(total, p), complaint[:, None], confusion
    )
    return Streams(
        total,
        negative,
        complaints,
        rng.integers(0, CATEGORIES, products),
        [f"steady-{i}" for i in range(products)],
    )


@dataclass(frozen=True)
class IncidentSpec:
    name: str
    size: float  # true negative share during the incident
    rate: float = 6.0  # reviews a minute
    complaint_words: bool = True


def incident_streams(
    rng: np.random.Generator,
    clock: Clock,
    spec: IncidentSpec,
    count: int,
    slots: int,
    window: tuple[int, int],
    confusion: Confusion,
) -> tuple[Streams, np.ndarray]:
    """``count`` products at ``spec.rate`` and 15% negative whose share turns to
    ``spec.size`` for an hour starting at a uniform moment in slots ``window``; returns the
    streams and each start in (fractional) slots."""
    start = rng.uniform(window[0], window[1], count)
    index = np.arange(slots)[None, :]
    total = rng.poisson(spec.rate / clock.per_minute, (count, slots)).astype(np.int32)
    after = np.clip(index + 1 - start[:, None], 0.0, 1.0)  # share of each slot after the start
    during = index < start[:, None] + clock.slots(INCIDENT_MINUTES)
    share = _wobble(rng, clock, count, slots) * BASE_SHARE
    incident_total = rng.binomial(total, np.where(during, after, 0.0))
    normal_total = total - incident_total
    complaint = rng.uniform(0.2, 0.6, (count, 1))
    neg_a, comp_a = _classify(
        rng,
        normal_total,
        rng.binomial(normal_total, np.clip(share, 0, 0.95)),
        complaint,
        confusion,
    )
    incident_complaint = INCIDENT_COMPLAINT_SHARE if spec.complaint_words else complaint
    neg_b, comp_b = _classify(
        rng,
        incident_total,
        rng.binomial(incident_total, spec.size),
        np.broadcast_to(incident_complaint, (count, 1)),
        confusion,
    )
    streams = Streams(
        total,
        neg_a + neg_b,
        comp_a + comp_b,
        rng.integers(0, CATEGORIES, count),
        [f"{spec.name}-{i}" for i in range(count)],
    )
    return streams, start


def new_product_streams(
    rng: np.random.Generator, clock: Clock, count: int, slots: int, window: tuple[int, int]
) -> Streams:
    """Products with no history that get 1-5 negative complaint reviews within 10 minutes."""
    total = np.zeros((count, slots), dtype=np.int32)
    for row in range(count):
        first = int(rng.integers(window[0], window[1]))
        for _ in range(int(rng.integers(1, 6))):
            total[row, min(first + int(rng.integers(0, clock.slots(10))), slots - 1)] += 1
    return Streams(
        total,
        total.copy(),
        total.copy(),
        rng.integers(0, CATEGORIES, count),
        [f"new-{i}" for i in range(count)],
    )


# --- driving the rules ------------------------------------------------------------------------


@dataclass(frozen=True)
class Raised:
    subject_type: str
    subject: str
    kind: str
    severity: str
    slot: int  # raised at the end of this slot


def _cumulative(values: np.ndarray) -> np.ndarray:
    out = np.zeros((values.shape[0], values.shape[1] + 1), dtype=np.int64)
    np.cumsum(values, axis=1, out=out[:, 1:])
    return out


def run_rules(
    streams: Streams, clock: Clock, settings: RuleSettings, first_slot: int, last_slot: int
) -> list[Raised]:
    """Evaluate at the end of every slot in ``[first_slot, last_slot)``; new incidents."""
    detector = settings.detector
    baseline = clock.slots(settings.baseline.total_seconds() / 60)
    sums = {
        name: _cumulative(getattr(streams, name)) for name in ("total", "negative", "complaint")
    }
    categories = [f"c{c}" for c in streams.category]
    tracker = IncidentTracker(settings.cooldown)
    raised: list[Raised] = []
    for slot in range(first_slot, last_slot):
        end = slot + 1
        minute_start = (slot // clock.per_minute) * clock.per_minute
        starts = [max(minute_start - (w - 1) * clock.per_minute, 0) for w in detector.windows]
        cut = {name: _window_arrays(cs, starts, end, baseline) for name, cs in sums.items()}
        total, base_total = cut["total"]
        step = StepCounts(
            end=clock.at(end),
            products=streams.names,
            categories=categories,
            negative=Counts(cut["negative"][0], total, cut["negative"][1], base_total),
            complaint=Counts(cut["complaint"][0], total, cut["complaint"][1], base_total),
        )
        # The incident tracker works on minute buckets of event time, as in the engine.
        at = clock.at(minute_start)
        for new in tracker.step(at, evaluate_step(step, settings), raised_at=clock.at(end)):
            f = new.finding
            raised.append(
                Raised(f.subject_type.value, f.subject, f.kind.value, f.severity.value, slot)
            )
    return raised


def _window_arrays(
    cumulative: np.ndarray, starts: Sequence[int], end: int, baseline: int
) -> tuple[np.ndarray, np.ndarray]:
    window = np.stack([cumulative[:, end] - cumulative[:, s] for s in starts], axis=1)
    base = np.stack(
        [cumulative[:, s] - cumulative[:, max(s - baseline, 0)] for s in starts], axis=1
    )
    return window.astype(float), base.astype(float)


# --- scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    steady_products: int = 2000
    hours: int = 24
    incidents: int = 200
    new_products: int = 500
    shop_products: int = 500  # products per independent shop (categories are per shop)
    context_products: int = 300  # steady neighbours of incident products


@dataclass
class World:
    """Every synthetic stream of one seed; reused by every configuration of the sweep."""

    clock: Clock
    warmup: int  # slots of history before evaluation starts
    shops: list[Streams]
    shop_slots: int
    incident_runs: list[tuple[IncidentSpec, Streams, np.ndarray, int]] = field(default_factory=list)
    sizes: Sizes = field(default_factory=Sizes)


INCIDENT_SPECS = (
    *(IncidentSpec(f"{round(BASE_SHARE * 100)}->{round(s * 100)}%", s) for s in INCIDENT_SIZES),
    IncidentSpec("15->85% no complaint words", 0.85, complaint_words=False),
    IncidentSpec("15->50% at 1/min", 0.50, rate=1.0),
    IncidentSpec("15->50% at 20/min", 0.50, rate=20.0),
)


def build_world(seed: int, sizes: Sizes, clock: Clock, confusion: Confusion) -> World:
    rng = np.random.default_rng(seed)
    warmup = clock.slots(24 * 60)
    shop_slots = warmup + clock.slots(sizes.hours * 60)
    shops = []
    remaining, new_left = sizes.steady_products, sizes.new_products
    shop_count = max(1, math.ceil(sizes.steady_products / sizes.shop_products))
    for _ in range(shop_count):
        n = min(sizes.shop_products, remaining)
        remaining -= n
        new_n = math.ceil(new_left / shop_count) if new_left else 0
        new_left -= new_n
        parts = [steady_streams(rng, clock, n, shop_slots, confusion)]
        if new_n:
            parts.append(
                new_product_streams(
                    rng, clock, new_n, shop_slots, (warmup, shop_slots - clock.slots(10))
                )
            )
        shops.append(Streams.concat(parts))
    world = World(clock, warmup, shops, shop_slots, sizes=sizes)
    # Incidents start in the first 5 of 6 evaluated hours and are followed for an hour.
    incident_slots = warmup + clock.slots(6 * 60)
    for spec in INCIDENT_SPECS:
        context = steady_streams(rng, clock, sizes.context_products, incident_slots, confusion)
        streams, start = incident_streams(
            rng,
            clock,
            spec,
            sizes.incidents,
            incident_slots,
            (warmup + clock.slots(5), warmup + clock.slots(5 * 60)),
            confusion,
        )
        world.incident_runs.append(
            (spec, Streams.concat([context, streams]), start, incident_slots)
        )
    return world


def _quantile(values: Sequence[float], q: float) -> float | None:
    return float(np.quantile(values, q)) if len(values) else None


def evaluate_world(world: World, settings: RuleSettings) -> dict[str, Any]:
    """Every scenario of ``world`` under ``settings``."""
    clock, sizes = world.clock, world.sizes
    steady_false = new_false = category_false = 0
    false_by_kind: dict[str, int] = {}
    for shop in world.shops:
        for alert in run_rules(shop, clock, settings, world.warmup, world.shop_slots):
            if alert.subject_type == SubjectType.CATEGORY.value:
                category_false += 1
            elif alert.subject.startswith("new-"):
                new_false += 1
            else:
                steady_false += 1
                false_by_kind[alert.kind] = false_by_kind.get(alert.kind, 0) + 1
    product_hours = sizes.steady_products * sizes.hours
    incidents = []
    for spec, streams, start, slots in world.incident_runs:
        raised = run_rules(streams, clock, settings, world.warmup, slots)
        first: dict[int, Raised] = {}
        before = 0
        neighbours = 0
        for alert in raised:
            if not alert.subject.startswith(spec.name + "-"):
                neighbours += alert.subject_type == SubjectType.PRODUCT.value
                continue
            row = int(alert.subject.rsplit("-", 1)[1])
            if alert.slot + 1 <= start[row]:
                before += 1
            elif row not in first:
                first[row] = alert
        delays = []
        for row, alert in first.items():
            minutes = (alert.slot + 1 - start[row]) / clock.per_minute
            if minutes <= INCIDENT_MINUTES:
                delays.append(minutes)
        detected = [
            a
            for r, a in first.items()
            if (a.slot + 1 - start[r]) / clock.per_minute <= INCIDENT_MINUTES
        ]
        incidents.append(
            {
                "scenario": spec.name,
                "size": spec.size,
                "rate_per_minute": spec.rate,
                "complaint_words": spec.complaint_words,
                "incidents": len(start),
                "median_delay_min": _quantile(delays, 0.5),
                "p90_delay_min": _quantile(delays, 0.9) if len(delays) == len(start) else None,
                "miss_rate": round(1 - len(delays) / len(start), 4),
                "critical_share": round(
                    sum(a.severity == "critical" for a in detected) / max(len(detected), 1), 3
                ),
                "by_kind": {
                    kind: sum(a.kind == kind for a in detected)
                    for kind in sorted({a.kind for a in detected})
                },
                "false_before_start": before,
                "false_neighbours": neighbours,
            }
        )
    return {
        "steady_product_hours": product_hours,
        "false_alerts": steady_false,
        "false_per_1000_product_hours": round(1000 * steady_false / product_hours, 3),
        "false_by_kind": dict(sorted(false_by_kind.items())),
        "new_products": sizes.new_products,
        "new_product_alerts": new_false,
        "category_alerts_steady": category_false,
        "incidents": incidents,
    }


# --- the sweep --------------------------------------------------------------------------------


def _scaled(detector: DetectorSettings, factor: float) -> DetectorSettings:
    return replace(detector, evidence=tuple(round(e * factor, 2) for e in detector.evidence))


def sweep_variants(settings: RuleSettings) -> Iterator[tuple[str, RuleSettings]]:
    """The shipped settings and one-knob-at-a-time variations around them."""
    d = settings.detector

    def with_detector(**changes: Any) -> RuleSettings:
        return replace(settings, detector=replace(d, **changes))

    yield "shipped", settings
    for factor in (0.85, 1.15):
        yield f"evidence x{factor}", replace(settings, detector=_scaled(d, factor))
    for margin in (0.03, 0.08):
        yield f"margin {margin}", with_detector(margin=margin)
    for weight in (10.0, 100.0):
        yield f"prior weight {weight:g}", with_detector(prior_weight=weight)
    for volume in (5, 20):
        yield f"min volume {volume}", with_detector(min_volume=volume)
    for windows, evidence in (
        ((5, 15, 60), (10.0, 9.0, 8.0)),
        ((3, 10, 60), (10.0, 9.0, 8.0)),
        ((2, 5, 15, 60), (10.0, 10.0, 9.0, 8.0)),
    ):
        label = "windows " + ",".join(map(str, windows))
        yield label, with_detector(windows=windows, evidence=evidence)


def _summary(label: str, result: dict[str, Any]) -> dict[str, Any]:
    by_name = {row["scenario"]: row for row in result["incidents"]}
    row: dict[str, Any] = {
        "variant": label,
        "false_per_1000": result["false_per_1000_product_hours"],
        "new_alerts": result["new_product_alerts"],
    }
    for name in ("15->85%", "15->50%", "15->40%"):
        r = by_name.get(name, {})
        row[f"{name} med"] = r.get("median_delay_min")
        row[f"{name} p90"] = r.get("p90_delay_min")
        row[f"{name} miss"] = r.get("miss_rate")
    return row


# --- output -----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict):
        return " ".join(f"{k}:{v}" for k, v in value.items()) or "-"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


INCIDENT_COLUMNS = (
    "scenario",
    "incidents",
    "median_delay_min",
    "p90_delay_min",
    "miss_rate",
    "critical_share",
    "by_kind",
    "false_before_start",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="simulation seed [1]")
    parser.add_argument("--steady-products", type=int, default=2000)
    parser.add_argument("--hours", type=int, default=24, help="evaluated hours per product")
    parser.add_argument("--incidents", type=int, default=200, help="incidents per scenario")
    parser.add_argument("--new-products", type=int, default=500)
    parser.add_argument("--no-sweep", action="store_true", help="only the shipped settings")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"[{DEFAULT_JSON}]")
    add_config_arguments(parser, AlertConfig, ModelConfig)
    args = parser.parse_args(argv)
    alerts = resolve(AlertConfig, args)
    if 60 % alerts.alert_interval_s or alerts.alert_interval_s < 1:
        parser.error("--alert-interval-s must divide a minute for the simulation")
    settings = RuleSettings.from_config(alerts)
    confusion = served_confusion(resolve(ModelConfig, args))
    clock = Clock(int(alerts.alert_interval_s))
    sizes = Sizes(args.steady_products, args.hours, args.incidents, args.new_products)
    started = time.perf_counter()
    world = build_world(args.seed, sizes, clock, confusion)
    print(
        f"model {confusion.source}: P(pred negative | negative) {confusion.tpr}, "
        f"P(pred negative | positive) {confusion.fpr}; seed {args.seed}; "
        f"simulated in {time.perf_counter() - started:.0f} s"
    )
    print(f"settings: {asdict(settings.detector)}")
    result = evaluate_world(world, settings)
    print("\nIncidents (shipped settings), delay in minutes from the incident's start\n")
    print(table(result["incidents"], INCIDENT_COLUMNS))
    print(
        f"\nsteady: {result['false_alerts']} false alerts in {result['steady_product_hours']:,} "
        f"product-hours = {result['false_per_1000_product_hours']} per 1,000 "
        f"({_cell(result['false_by_kind'])}); "
        f"category alerts {result['category_alerts_steady']}; new products: "
        f"{result['new_product_alerts']} alerts for {result['new_products']} products"
    )
    output: dict[str, Any] = {
        "seed": args.seed,
        "sizes": asdict(sizes),
        "confusion": asdict(confusion),
        "settings": alerts.model_dump(),
        "result": result,
    }
    if not args.no_sweep:
        rows = []
        for label, variant in sweep_variants(settings):
            rows.append(_summary(label, evaluate_world(world, variant)))
            print(f"  swept {label}", flush=True)
        print("\nSweep (one knob at a time around the shipped settings)\n")
        print(table(rows, list(rows[0])))
        output["sweep"] = rows
    output["seconds"] = round(time.perf_counter() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(output, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nJSON: {args.json} ({output['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
