"""Model-health reads on both backends: window profiles and feedback equal what the input
says, ``evaluate_model_health`` finds the drifted category and only it (the same findings
the pure rules give on figures computed from the input), the agreement gauge, the report
section, the Grafana panels and ``reviewpulse report model``."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from model.card import DataCard, ModelCard
from model.labels import BINARY_SENTIMENTS, label_from_rating
from model.predictor import Prediction
from model.profile import TrafficProfile, profile_of
from stream.cli import main
from stream.config import ModelConfig, MonitorConfig, WorkerConfig, config_flags
from stream.metrics import Metrics, read_samples
from stream.monitoring.health import evaluate_model_health, refresh_agreement_gauge
from stream.monitoring.queries import read_feedback, read_traffic
from stream.monitoring.report import model_health_sections, served_card
from stream.monitoring.rules import (
    FEEDBACK_DROP,
    MODEL_DRIFT,
    Feedback,
    MonitorWindow,
    WindowTraffic,
    evaluate_health,
)
from stream.rows import ReviewRow
from stream.sink.backend import ClickHouse
from stream.sink.connection import connect
from stream.sink.migrations import migrate
from stream.sink.store import ReviewStore
from tests.stream.monitoring.traffic import review_row
from tests.stream.reputation.test_dashboard import dashboard, expand_macros

pytestmark = pytest.mark.clickhouse

NOW = datetime(2026, 5, 6, 12, 30, 20, tzinfo=UTC)
CONFIG = MonitorConfig(monitor_min_reviews=60, monitor_min_rated=40)
WINDOW = MonitorWindow.ending_at(NOW, CONFIG.monitor_window_minutes, 24)
TEXTS = ["质量很好，物流也快，非常满意", "一般般吧，还行", "用了三天就坏了，客服也不理，差评"]


def steady(rng: random.Random, i: int, at: datetime, category: str, version: str = "v1"):
    """Traffic like the reference: confident, rarely neutral, ratings mostly agreeing."""
    label = rng.choice(BINARY_SENTIMENTS) if rng.random() > 0.08 else "neutral"
    rating = {"positive": 5, "negative": 1, "neutral": 3}[label]
    if rng.random() < 0.1:
        rating = 6 - rating  # the rating says otherwise
    return review_row(
        f"{category}-{version}-{i:04d}",
        category,
        label,
        at,
        confidence=rng.choice([0.72, 0.77, 0.79]) if label != "neutral" else 0.45,
        rating=rating if rng.random() < 0.8 else None,
        text=rng.choice(TEXTS),
        tokens=12,
        unknown_tokens=0,
        model_version=version,
    )


def drifted(rng: random.Random, i: int, at: datetime, category: str, version: str = "v1"):
    """A domain the model never saw: neutral, unsure, unknown words, ratings disagreeing."""
    label = rng.choice(["neutral", "neutral", "positive", "negative"])
    return review_row(
        f"{category}-{version}-{i:04d}",
        category,
        label,
        at,
        confidence=rng.choice([0.41, 0.52, 0.61]),
        rating=rng.choice([1, 2, 4, 5]),
        text="送餐超时一个小时，饭都凉了，骑手态度也差" * rng.randint(1, 4),
        tokens=20,
        unknown_tokens=rng.randint(1, 3),
        model_version=version,
    )


def spread(start: datetime, end: datetime, n: int) -> list[datetime]:
    step = (end - start) / n
    return [start + step * i for i in range(n)]


def scenario() -> list[ReviewRow]:
    """手机 steady in the baseline and the window; 外卖 steady in the baseline, drifted in
    the window; a few 外卖 reviews of another model version, and some outside the window."""
    rng = random.Random(17)
    rows = []
    for category in ("手机", "外卖"):
        for i, at in enumerate(spread(WINDOW.baseline_start, WINDOW.start, 120)):
            rows.append(steady(rng, i, at, category))
    for i, at in enumerate(spread(WINDOW.start, NOW, 120)):
        rows.append(steady(rng, 1000 + i, at, "手机"))
        rows.append(drifted(rng, 1000 + i, at, "外卖"))
    for i, at in enumerate(spread(WINDOW.start, NOW, 30)):
        rows.append(steady(rng, 2000 + i, at, "外卖", version="v0"))
    rows.append(drifted(rng, 3000, NOW + timedelta(minutes=2), "外卖"))  # after the window
    return rows


def reference() -> TrafficProfile:
    """The reference: what steady traffic looks like, with a validation agreement."""
    rng = random.Random(3)
    rows = [steady(rng, i, NOW, "参考") for i in range(2000)]
    return profile_of(
        [as_prediction(r) for r in rows],
        [len(r.text) for r in rows],
        [r.sentiment if rng.random() < 0.9 else "negative" for r in rows],
    )


def as_prediction(row: ReviewRow) -> Prediction:
    return Prediction(
        label=row.sentiment,  # type: ignore[arg-type]
        confidence=row.confidence,
        probabilities={},
        tokens=row.tokens,
        unknown_tokens=row.unknown_tokens,
    )


def in_range(row: ReviewRow, start: datetime, end: datetime, version: str | None) -> bool:
    return start <= row.created_at < end and (version is None or row.model_version == version)


def expected_traffic(
    rows: list[ReviewRow], start: datetime, end: datetime, version: str | None
) -> dict[str, WindowTraffic]:
    by_category: dict[str, list[ReviewRow]] = defaultdict(list)
    for row in rows:
        if in_range(row, start, end, version):
            by_category[row.category].append(row)
    return {
        category: WindowTraffic(
            profile_of([as_prediction(r) for r in members], [len(r.text) for r in members]),
            sum(r.tokens for r in members),
        )
        for category, members in by_category.items()
    }


def expected_feedback(
    rows: list[ReviewRow], start: datetime, end: datetime, version: str | None
) -> dict[str, Feedback]:
    cells: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        if row.rating is not None and in_range(row, start, end, version):
            cells[row.category][(row.sentiment, label_from_rating(row.rating))] += 1
    return {category: Feedback(dict(counter)) for category, counter in cells.items()}


@pytest.fixture
def stored(ch: ClickHouse) -> list[ReviewRow]:
    rows = scenario()
    store = ReviewStore(ch)
    store.write_reviews(rows)
    store.write_reviews(rows[::7])  # redelivered
    return rows


@pytest.mark.parametrize("version", ["v1", None])
def test_window_traffic_is_the_profile_of_the_input(
    ch: ClickHouse, stored: list[ReviewRow], version: str | None
) -> None:
    got = read_traffic(ch, WINDOW.start, WINDOW.end, version)
    assert got == expected_traffic(stored, WINDOW.start, WINDOW.end, version)
    assert got["外卖"].profile.neutral_share > 0.3 and got["手机"].profile.neutral_share < 0.2


def test_window_and_baseline_feedback_are_the_confusion_of_the_input(
    ch: ClickHouse, stored: list[ReviewRow]
) -> None:
    got = read_feedback(ch, WINDOW, "category", "v1")
    assert got.window == expected_feedback(stored, WINDOW.start, WINDOW.end, "v1")
    assert got.baseline == expected_feedback(stored, WINDOW.baseline_start, WINDOW.start, "v1")
    by_version = read_feedback(ch, WINDOW, "model_version").window
    assert set(by_version) == {"v0", "v1"}
    with pytest.raises(ValueError, match="not 'product_id'"):
        read_feedback(ch, WINDOW, "product_id")


def test_model_health_finds_the_drifted_category_and_only_it(
    ch: ClickHouse, stored: list[ReviewRow]
) -> None:
    ref = reference()
    found = evaluate_model_health(ch, ref, CONFIG, NOW, model_version="v1")
    assert [(f.kind, f.category) for f in found] == [(MODEL_DRIFT, "外卖"), (FEEDBACK_DROP, "外卖")]
    # The same findings as the pure rules on figures computed from the input.
    want = evaluate_health(
        expected_traffic(stored, WINDOW.start, WINDOW.end, "v1"),
        expected_feedback(stored, WINDOW.start, WINDOW.end, "v1"),
        expected_feedback(stored, WINDOW.baseline_start, WINDOW.start, "v1"),
        ref,
        CONFIG,
        WINDOW,
        "v1",
        baseline_traffic=expected_traffic(stored, WINDOW.baseline_start, WINDOW.start, "v1"),
    )
    assert found == want
    drift, drop = found
    # Its label shares moved against its own earlier traffic, not only against the card.
    assert {"neutral_share", "unknown_token_share", "label_psi"} <= set(drift.reasons)
    assert drift.figures["baseline_reviews"] == 120
    assert drop.figures["baseline_agreement"] > 0.8 and drop.figures["clear_agreement"] < 0.6
    # Without a reference only the baseline comparison runs.
    assert [f.kind for f in evaluate_model_health(ch, None, CONFIG, NOW, model_version="v1")] == [
        FEEDBACK_DROP
    ]


def test_findings_carry_the_newest_reviews_that_show_the_problem(
    ch: ClickHouse, stored: list[ReviewRow]
) -> None:
    drift, drop = evaluate_model_health(
        ch, reference(), CONFIG, NOW, model_version="v1", sample_reviews=4
    )
    in_window = [
        r for r in stored if r.category == "外卖" and in_range(r, WINDOW.start, WINDOW.end, "v1")
    ]
    newest_first = sorted(in_window, key=lambda r: (-r.created_at.timestamp(), r.review_id))
    disagreeing = [
        r.review_id
        for r in newest_first
        if r.rating is not None and r.sentiment != label_from_rating(r.rating)
    ]
    assert list(drop.sample_review_ids) == disagreeing[:4]
    flagged = [r.review_id for r in newest_first if r.sentiment == "neutral" or r.unknown_tokens]
    assert list(drift.sample_review_ids) == flagged[:4]


def test_the_agreement_gauge(ch: ClickHouse, stored: list[ReviewRow]) -> None:
    metrics = Metrics()
    metrics.rating_agreement.labels(model_version="gone").set(0.5)
    got = refresh_agreement_gauge(ch, metrics, CONFIG, NOW)
    start = NOW.replace(second=0) + timedelta(minutes=1) - timedelta(minutes=60)
    for version in ("v0", "v1"):
        rated = [
            r for r in stored if r.rating is not None and in_range(r, start, WINDOW.end, version)
        ]
        agreeing = sum(r.sentiment == label_from_rating(r.rating) for r in rated)
        assert got[version] == pytest.approx(agreeing / len(rated))
    text = metrics.exposition()[0].decode()
    samples = read_samples(text, "reviewpulse_rating_agreement")
    assert samples == {(("model_version", v),): pytest.approx(a) for v, a in got.items()}
    assert read_samples(text, "reviewpulse_rated_reviews")[(("model_version", "v0"),)] > 0


def card_with(profile: TrafficProfile | None, version: str = "v1") -> ModelCard:
    return ModelCard(
        name="sentiment",
        version=version,
        model_labels=BINARY_SENTIMENTS,
        temperature=1.0,
        neutral_band=None,
        max_length=64,
        text_prefix="",
        start={},
        training={},
        data=DataCard(),
        onnx=None,
        metrics={},
        learning_curves={},
        reference=profile,
    )


def test_the_report_section(ch: ClickHouse, stored: list[ReviewRow]) -> None:
    sections = model_health_sections(ch, card_with(reference()), CONFIG, hours=24, now=NOW)
    feedback, confusion, drift = sections.values()
    start = NOW.replace(second=0) + timedelta(minutes=1) - timedelta(hours=24)
    want = expected_feedback(stored, start, WINDOW.end, "v1")
    rows = {(r["model_version"], r["category"]): r for r in feedback[0]}
    assert rows[("v1", "外卖")]["rated"] == want["外卖"].rated
    assert rows[("v1", "外卖")]["agreement"] == pytest.approx(want["外卖"].agreement)
    assert rows[("v1", "手机")]["clear_agreement"] == pytest.approx(want["手机"].clear_agreement)
    v1 = [r for r in confusion[0] if r["model_version"] == "v1"]
    assert [r["predicted"] for r in v1] == ["negative", "neutral", "positive"]
    assert sum(r["rated_positive"] for r in v1) == sum(
        f.count(rated="positive") for f in want.values()
    )
    [waimai, shouji] = drift[0]  # most label drift first
    assert waimai["category"] == "外卖" and "neutral_share" in waimai["drifted"]
    assert shouji["category"] == "手机" and shouji["drifted"] == "-"
    no_reference = model_health_sections(ch, card_with(None), CONFIG, hours=24, now=NOW)
    assert "its card has no reference" in list(no_reference)[2]


def test_a_missing_model_is_reported_not_raised(tmp_path: Path) -> None:
    reason = served_card(ModelConfig(model_registry=tmp_path))
    assert isinstance(reason, str) and reason.startswith("no model card")


def test_the_grafana_panels(ch: ClickHouse, stored: list[ReviewRow]) -> None:
    queries = {
        panel["title"]: target["rawSql"]
        for panel in dashboard()["panels"]
        for target in panel["targets"]
        if "rawSql" in target
    }
    start, end = WINDOW.start, WINDOW.end

    def run(title: str) -> list[tuple]:  # $__interval of a day: one point per series
        return ch.query(
            expand_macros(queries[title], start, end - timedelta(seconds=1), 86_400_000)
        )

    want = defaultdict(Counter)
    for r in stored:
        if r.rating is not None and in_range(r, start, end, None):
            want[r.model_version][r.sentiment == label_from_rating(r.rating)] += 1
    agreement = {row[1]: row[2] for row in run("Rating agreement by model version")}
    assert agreement == {v: pytest.approx(c[True] / (c[True] + c[False])) for v, c in want.items()}
    confusion = run("Prediction x rating (selected range)")
    assert sum(sum(row[2:]) for row in confusion) == sum(sum(c.values()) for c in want.values())
    neutral = {row[1]: row[2] for row in run("Neutral share by category")}
    traffic = expected_traffic(stored, start, end, None)
    assert neutral == {c: pytest.approx(t.profile.neutral_share) for c, t in traffic.items()}


@pytest.mark.parametrize("backend", ["native", "embedded"])
def test_reviewpulse_report_model(
    backend: str,
    make_config: Callable[..., WorkerConfig],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = make_config(clickhouse_backend=backend)
    now = datetime.now(UTC)
    rng = random.Random(5)
    rows = [drifted(rng, i, now - timedelta(minutes=i % 50), "外卖") for i in range(80)]
    ch = connect(config.clickhouse)
    try:
        migrate(ch)
        ReviewStore(ch).write_reviews(rows)
    finally:
        ch.close()  # the command opens the database itself (one chdb holder per process)
    model_dir = tmp_path / "registry" / "sentiment" / "v1"
    model_dir.mkdir(parents=True)
    card_with(reference()).write(model_dir)
    flags = [
        *config_flags(config.clickhouse),
        "--model-registry", str(tmp_path / "registry"), "--model-version", "v1",
        "--monitor-min-reviews", "50",
    ]  # fmt: skip
    assert main(["report", "model", *flags]) == 0
    out = capsys.readouterr().out
    assert "Rating feedback by model version and category (last 24 h)" in out
    assert "Drift of model v1 against its reference (last 24 h)" in out
    assert "neutral_share" in out
    assert main(["report", "model", "--json", *flags]) == 0
    report = json.loads(capsys.readouterr().out)
    feedback = report["Rating feedback by model version and category (last 24 h)"]
    assert feedback[0]["rated"] == 80 and feedback[0]["category"] == "外卖"
