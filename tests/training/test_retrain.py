"""``reviewpulse retrain``: the mix and hold-back rules, and the command against a real
ClickHouse (a tiny model trained on a corpus sample, fine-tuned on rated "traffic" from a
category the corpus sample lacks)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from model.card import ModelCard
from model.corpus import SHIPPED_CORPUS
from model.registry import current_version, list_versions, publish, resolve_model_dir
from stream.cli import main
from stream.config import WorkerConfig, config_flags
from stream.sink.connection import connect
from stream.sink.migrations import migrate
from stream.sink.store import ReviewStore
from training.bert import BertSpec, TrainOptions
from training.data import Review, load_file
from training.gate import EXIT_NOT_PROMOTED
from training.pipeline import prepare_data
from training.retrain import EXIT_NO_RATINGS
from training.traffic import MixRule, plan_mix, split_traffic, take, traffic_review
from training.train import TrainRequest, train_and_package

T0 = datetime(2026, 11, 1, tzinfo=UTC)

# --- the mix rule -------------------------------------------------------------------------------


def test_scarce_traffic_subsamples_the_corpus_to_three_times_the_traffic() -> None:
    plan = plan_mix(50_000, 4_000)
    assert (plan.corpus_rows, plan.traffic_rows, plan.share) == (12_000, 4_000, 0.25)
    # The TF-IDF half keeps all 50k corpus reviews; traffic weighs a quarter of the total.
    assert 4_000 * plan.traffic_weight / (4_000 * plan.traffic_weight + 50_000) == pytest.approx(
        0.25
    )


def test_abundant_traffic_is_subsampled_to_match_the_corpus() -> None:
    plan = plan_mix(10_000, 30_000)
    assert (plan.corpus_rows, plan.traffic_rows, plan.share) == (10_000, 10_000, 0.5)
    assert plan.traffic_weight == pytest.approx(10_000 / 30_000)


def test_a_balanced_mix_is_kept_whole_within_the_row_cap() -> None:
    plan = plan_mix(6_000, 3_000)
    assert (plan.corpus_rows, plan.traffic_rows) == (6_000, 3_000)
    assert plan.traffic_weight == pytest.approx(1.0)
    capped = plan_mix(60_000, 30_000, MixRule(max_rows=9_000))
    assert (capped.corpus_rows, capped.traffic_rows) == (6_000, 3_000)
    with pytest.raises(ValueError):
        plan_mix(100, 0)
    with pytest.raises(ValueError):
        MixRule(min_share=0.6, max_share=0.5)


def test_take_is_deterministic_and_proportional_per_category_and_label() -> None:
    reviews = [Review(f"评论{i}", "positive" if i % 4 else "negative", "书籍") for i in range(400)]
    sample = take(reviews, 100)
    assert sample == take(list(reversed(reviews)), 100)
    assert len(sample) == 100
    assert sum(r.label == "negative" for r in sample) == 25


# --- rated traffic: labels and the time-ordered hold-back ---------------------------------------


def _traffic(texts: list[str], ratings: list[int]) -> list:
    return [
        traffic_review(f"r{i:04d}", text, "酒店", rating, T0 + timedelta(minutes=i))
        for i, (text, rating) in enumerate(zip(texts, ratings, strict=True))
    ]


def test_split_traffic_holds_back_the_newest_and_drops_what_the_corpus_has() -> None:
    texts = [f"第{i}次入住，房间编号{i * 7919}，感受各不相同" for i in range(100)]
    ratings = [(1, 2, 3, 4, 5)[i % 5] for i in range(100)]
    rated = _traffic(texts, ratings)
    corpus_eval = [texts[10] + "！"]  # a near-copy of a corpus test review must stay unseen
    corpus_train = [texts[20]]
    parts = split_traffic(
        list(reversed(rated)),  # read order does not matter: time does
        corpus_train=corpus_train,
        corpus_eval=corpus_eval,
        holdback=0.2,
        validation=0.1,
    )
    assert parts.ratings == {1: 20, 2: 20, 3: 20, 4: 20, 5: 20}
    assert parts.dropped["in_corpus"] == 2
    kept = parts.train + parts.validation + parts.holdback
    assert [r.review_id for r in kept] == sorted(r.review_id for r in kept)
    assert len(parts.holdback) == round(98 * 0.2)
    assert max(r.created_at for r in parts.train) < min(r.created_at for r in parts.holdback)
    assert {"r0010", "r0020"}.isdisjoint(r.review_id for r in kept)
    assert all(r.label != "neutral" for r in parts.binary("train"))
    assert any(r.rating == 3 for r in parts.holdback)
    summary = parts.summary()
    assert summary["mapping"] == {"negative": [1, 2], "neutral": [3], "positive": [4, 5]}
    assert summary["parts"]["holdback"]["reviews"] == len(parts.holdback)


def test_a_rating_maps_to_the_training_label() -> None:
    (low, mid, high) = _traffic(["太差", "一般", "很好"], [2, 3, 4])
    assert (low.label, mid.label, high.label) == ("negative", "neutral", "positive")
    with pytest.raises(ValueError):
        traffic_review("x", "好", None, 6, T0)


# --- the command --------------------------------------------------------------------------------


@pytest.mark.clickhouse
@pytest.mark.parametrize("backend", ["native", "embedded"])
def test_no_ratings_exits_with_a_clear_message(
    backend: str, make_config: Callable[..., WorkerConfig], capsys
) -> None:
    config = make_config(clickhouse_backend=backend)
    ch = connect(config.clickhouse)
    try:
        migrate(ch)
    finally:
        ch.close()
    code = main(
        ["retrain", "--since", "all", *config_flags(config.clickhouse)]
    )  # the shipped model
    err = capsys.readouterr().err
    assert code == EXIT_NO_RATINGS
    assert "no rated reviews" in err and config.clickhouse.clickhouse_database in err


HELD_OUT = "酒店"


@pytest.fixture(scope="module")
def corpus_and_traffic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Review]]:
    """A corpus sample without hotels (CSV), and hotel reviews to stream as rated traffic."""
    root = tmp_path_factory.mktemp("retrain")
    reviews, _ = load_file(SHIPPED_CORPUS)
    kept = [r for r in reviews if r.category != HELD_OUT][::20]
    path = root / "corpus.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cat", "label", "review"])
        writer.writerows([r.category, int(r.label == "positive"), r.text] for r in kept)
    hotels = [r for r in reviews if r.category == HELD_OUT][::8]
    return path, hotels


@pytest.fixture(scope="module")
def tiny_served(
    corpus_and_traffic: tuple[Path, list[Review]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A registry serving a tiny hybrid trained on the corpus sample."""
    corpus, _ = corpus_and_traffic
    registry = tmp_path_factory.mktemp("registry")
    request = TrainRequest(
        spec=BertSpec(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
        options=TrainOptions(epochs=2, batch_size=32, learning_rate=3e-3, max_length=64),
        tag="base",
    )
    result = train_and_package(prepare_data([corpus]), request, registry / "build", progress=False)
    publish(registry, "sentiment", result.card.version, result.directory)
    return registry


def _rows(hotels: list[Review], start: datetime) -> list[dict]:
    rows = []
    for i, review in enumerate(hotels):
        rating = (4, 5)[i % 2] if review.label == "positive" else (1, 2)[i % 2]
        rows.append(
            {
                "review_id": f"h-{i:05d}",
                "product_id": "p-hotel",
                "category": HELD_OUT,
                "user_id": f"u{i}",
                "rating": 3 if i % 23 == 0 else rating,
                "text": review.text,
                "sentiment": "neutral",
                "confidence": 0.5,
                "prob_negative": 0.25,
                "prob_neutral": 0.5,
                "prob_positive": 0.25,
                "keywords": [],
                "complaint_keywords": [],
                "model_version": "base",
                "created_at": start + timedelta(seconds=i),
                "processed_at": datetime.now(UTC).replace(microsecond=0),
            }
        )
    return rows


@pytest.mark.slow
@pytest.mark.clickhouse
def test_retrain_publishes_a_candidate_with_its_sources_and_gate(
    corpus_and_traffic: tuple[Path, list[Review]],
    tiny_served: Path,
    make_config: Callable[..., WorkerConfig],
    capsys,
) -> None:
    corpus, hotels = corpus_and_traffic
    served = current_version(tiny_served, "sentiment")
    config = make_config(clickhouse_backend="embedded")
    ch = connect(config.clickhouse)
    try:
        migrate(ch)
        ReviewStore(ch).write_reviews(_rows(hotels, T0))
    finally:
        ch.close()
    common = [
        "retrain", "--data", str(corpus), "--model-registry", str(tiny_served),
        "--model-threads", "1", "--no-progress", "--fine-tune-runs", "rule:2,0.5:1",
        "--learning-rate", "1e-3",
        "--min-holdback-reviews", "20", "--max-ece", "0.5", *config_flags(config.clickhouse),
    ]  # fmt: skip
    code = main([*common, "--publish-only"])
    out = capsys.readouterr().out
    assert code in (0, EXIT_NOT_PROMOTED)
    assert current_version(tiny_served, "sentiment") == served  # publish-only: never moves
    (candidate,) = [v for v in list_versions(tiny_served, "sentiment") if v != served]
    gate = json.loads(next(line for line in out.splitlines() if line.startswith("gate: "))[6:])
    assert gate["promote"] == (code == 0)
    card = ModelCard.read(resolve_model_dir(tiny_served, "sentiment", candidate))
    record = card.retraining
    assert record is not None and record["served_version"] == served
    assert record["gate"] == gate
    sources = {s.path: s for s in card.data.sources}
    assert sources["clickhouse:reviews"].rows == len(hotels)
    assert sources["clickhouse:reviews"].sha256 and len(sources) == 2
    traffic = record["traffic"]
    assert sum(traffic["ratings_read"].values()) == len(hotels)
    assert traffic["ratings_read"]["3"] == len(range(0, len(hotels), 23))
    assert traffic["parts"]["holdback"]["reviews"] > 0
    assert record["mix"]["traffic_share"] >= 0.25
    # Three candidates (the rule's mix after epochs 1 and 2, half traffic after 1), scored on
    # weighted validation; the chosen one is what was packaged, and the corpus floor is the
    # served model's corpus validation accuracy less the gate's allowance.
    selection = record["selection"]
    assert set(selection["candidates"]) == {"rule:2@1", "rule:2@2", "0.5:1@1"}
    chosen = selection["candidates"][selection["chosen"]]
    assert record["options"]["epochs"] == chosen["epoch"]
    assert record["mix"]["traffic_share"] == chosen["traffic_share"]
    assert selection["min_corpus_validation_accuracy"] == pytest.approx(
        selection["served_corpus_validation_accuracy"] - 0.005, abs=1e-4
    )
    assert selection["candidates"]["0.5:1@1"]["traffic_share"] == 0.5
    assert card.lexical.selection["validation_weighting"]["traffic_weight"] == 0.5
    assert card.lexical is not None and card.lexical.selection["sample_weighted"]
    assert card.reference is not None
    assert card.start["kind"] == "retrained" and card.start["version"] == served
    # The candidate was built after these reviews were stored: fine-tuning it (the default
    # window: since its build) finds nothing new to learn from.
    assert main([*common, "--model-version", candidate]) == EXIT_NO_RATINGS
    # Another corpus than the served model's would leak into its test split: refused.
    other = corpus.with_name("other.csv")
    lines = corpus.read_text(encoding="utf-8").splitlines()[:-50]
    other.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert common[1:3] == ["--data", str(corpus)]
    assert main([common[0], "--data", str(other), *common[3:]]) == 2
    assert "not the one the served model" in capsys.readouterr().err
