"""``reviewpulse retrain``: fine-tune the served model on its own rated traffic.

1. Read the rated reviews ClickHouse stored since the served model was built
   (``stream.sink.reads.read_rated_since``); map ratings to labels and split them in time
   order: training, validation, and the newest slice held back as a second test set
   (:mod:`training.traffic`).
2. Rebuild the served model's corpus split (its hash must match the card's), and mix corpus
   training reviews with traffic by the rule of :func:`training.traffic.plan_mix`.
3. Fine-tune the served network on the mix (CPU, minutes: the student is small), refit the
   TF-IDF half on corpus + traffic (traffic weighted to the same share), calibrate on corpus +
   traffic validation, evaluate once on the corpus test split (:func:`training.train.package`).
4. Judge candidate and served model, through the serving runtime, on the corpus test split and
   on the held-back slice (:func:`training.gate.decide_retrain`), and record all of it in the
   candidate's card (``retraining``).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.card import DataSource, ModelCard
from model.labels import BINARY_SENTIMENTS, NEUTRAL
from training.gate import GateDecision, RetrainRules, decide_retrain
from training.lexical import LexicalRequest
from training.pipeline import PreparedData
from training.split import Split
from training.traffic import (
    MixPlan,
    MixRule,
    TrafficReview,
    TrafficSplit,
    plan_mix,
    split_traffic,
    take,
    traffic_review,
)

if TYPE_CHECKING:
    from model.predictor import SentimentModel
    from stream.config import ClickHouseConfig
    from training.train import TrainResult

EXIT_NO_RATINGS = 4  # nothing to learn from: no rated reviews in the window


class NoRatings(RuntimeError):
    """ClickHouse holds no rated reviews in the window retraining reads."""


@dataclass(frozen=True)
class RetrainOptions:
    holdback: float = 0.2  # newest share of the rated traffic, held back as a test set
    validation: float = 0.1  # the share just before it: calibration and model selection
    mix: MixRule = field(default_factory=MixRule)
    epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 64
    seed: int = 13
    min_train_reviews: int = 50  # two-class traffic training reviews needed to fine-tune
    lexical: bool = True  # refit (or add) the TF-IDF half
    tag: str = "retrained"
    rules: RetrainRules = field(default_factory=RetrainRules)


@dataclass(frozen=True)
class Traffic:
    """What was read from ClickHouse, as training data, and where it came from."""

    reviews: list[TrafficReview]
    source: DataSource
    since: datetime | None
    database: str


def read_traffic(clickhouse: ClickHouseConfig, since: datetime | None) -> Traffic:
    """Rated reviews stored at or after ``since`` (all when None), oldest first."""
    from stream.sink.connection import connect
    from stream.sink.reads import read_rated_since

    ch = connect(clickhouse)
    try:
        rows = read_rated_since(ch, since=since)
    finally:
        ch.close()
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r.review_id):
        digest.update(f"{row.review_id}\t{row.rating}\t{row.text}\n".encode())
    return Traffic(
        reviews=[
            traffic_review(r.review_id, r.text, r.category, r.rating, r.created_at) for r in rows
        ],
        source=DataSource(path="clickhouse:reviews", sha256=digest.hexdigest(), rows=len(rows)),
        since=since,
        database=clickhouse.clickhouse_database,
    )


def corpus_split_sha256(card: ModelCard) -> str | None:
    """The corpus split a model was built on: a retrained model records its corpus's."""
    if card.retraining and card.retraining.get("corpus", {}).get("split_sha256"):
        return card.retraining["corpus"]["split_sha256"]
    return card.data.split_sha256


@dataclass
class RetrainResult:
    result: TrainResult
    traffic: TrafficSplit
    plan: MixPlan
    decision: GateDecision

    @property
    def card(self) -> ModelCard:
        return self.result.card


def slice_figures(
    model: SentimentModel, corpus_test: Sequence[Any], holdback: Sequence[TrafficReview]
) -> dict[str, float]:
    """A model's figures on the gate's two slices, as it serves: two-class accuracy on the
    corpus test split and on the held-back traffic (3-star reviews left out), agreement of its
    served label with the rating's (all three labels), and its neutral share on 3-star reviews."""
    prefix = model.text_prefix

    def accuracy(texts: list[str], labels: list[str]) -> float:
        if not texts:
            return float("nan")
        y = np.array([BINARY_SENTIMENTS.index(label) for label in labels])
        return float((model.logits([prefix + t for t in texts]).argmax(1) == y).mean())

    binary = [r for r in holdback if r.label != NEUTRAL]
    served = [p.label for p in model.predict_cleaned([r.text for r in holdback])]
    three_star = [label for label, r in zip(served, holdback, strict=True) if r.rating == 3]
    return {
        "corpus_test_accuracy": accuracy(
            [r.text for r in corpus_test], [r.label for r in corpus_test]
        ),
        "traffic_accuracy": accuracy([r.text for r in binary], [r.label for r in binary]),
        "holdback_reviews": len(binary),
        "holdback_rating_agreement": float(
            np.mean([label == r.label for label, r in zip(served, holdback, strict=True)])
        )
        if holdback
        else float("nan"),
        "holdback_three_star_reviews": len(three_star),
        "holdback_three_star_neutral_share": float(np.mean([x == NEUTRAL for x in three_star]))
        if three_star
        else float("nan"),
    }


def retrain(
    served_dir: Path,
    corpus: PreparedData,
    traffic: Traffic,
    out_dir: Path,
    options: RetrainOptions = RetrainOptions(),
    *,
    runtime: str = "auto",
    threads: int = 2,
    progress: bool = True,
) -> RetrainResult:
    """Fine-tune the model in ``served_dir`` on ``corpus`` + ``traffic`` into ``out_dir`` and
    judge it (see the module doc). Raises :class:`NoRatings` when there is nothing to learn."""
    from model.predictor import SentimentModel
    from training.bert import TrainOptions
    from training.train import TrainRequest, fit, package

    served_card = ModelCard.read(served_dir)
    if not traffic.reviews:
        raise NoRatings("no rated reviews to retrain on")
    expected = corpus_split_sha256(served_card)
    if expected is not None and expected != corpus.split.sha256:
        raise ValueError(
            f"the corpus split ({corpus.split.sha256[:16]}) is not the one the served model "
            f"{served_card.version} was built on ({expected[:16]}): pass the same corpus "
            "(--data or --training-corpus) so the corpus test split stays unseen"
        )
    if tuple(served_card.model_labels) != BINARY_SENTIMENTS:
        raise ValueError(f"retraining needs a two-class served model: {served_card.model_labels}")
    split = corpus.split
    parts = split_traffic(
        traffic.reviews,
        corpus_train=[r.text for r in split.train],
        corpus_eval=[r.text for r in split.validation + split.test],
        holdback=options.holdback,
        validation=options.validation,
    )
    train_traffic = [r.as_review() for r in parts.binary("train")]
    if len(train_traffic) < options.min_train_reviews:
        raise NoRatings(
            f"{len(train_traffic)} usable rated training reviews (after the hold-back, 3-star "
            f"reviews and duplicates of the corpus): fewer than {options.min_train_reviews}"
        )
    plan = plan_mix(len(split.train), len(train_traffic), options.mix)
    mix = take(split.train, plan.corpus_rows, seed="corpus") + take(
        train_traffic, plan.traffic_rows, seed="traffic"
    )
    validation = split.validation + [r.as_review() for r in parts.binary("validation")]
    full = PreparedData(
        split=Split(
            train=split.train + train_traffic,
            validation=validation,
            test=split.test,
            leaks_dropped=dict(split.leaks_dropped),
        ),
        cleaning=corpus.cleaning,
        sources=[*corpus.sources, traffic.source],
    )
    mixed = PreparedData(
        split=Split(train=mix, validation=validation, test=split.test), cleaning=corpus.cleaning
    )
    train_options = TrainOptions(
        epochs=options.epochs,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        max_length=served_card.max_length,
        seed=options.seed,
        text_prefix=served_card.text_prefix,
    )
    request = TrainRequest(options=train_options, init_checkpoint=Path(served_dir))
    lexical = None
    if options.lexical:
        weights = np.concatenate(
            [np.ones(len(split.train)), np.full(len(train_traffic), plan.traffic_weight)]
        )
        lexical = LexicalRequest(train_weights=weights)
    record = {
        "served_version": served_card.version,
        "since": traffic.since.isoformat() if traffic.since else None,
        "clickhouse_database": traffic.database,
        "corpus": {
            "split_sha256": split.sha256,
            "sources": [asdict(s) for s in corpus.sources],
        },
        "traffic": {"source": asdict(traffic.source), **parts.summary()},
        "mix": plan.to_dict(),
        "options": {
            "holdback": options.holdback,
            "validation": options.validation,
            "epochs": options.epochs,
            "learning_rate": options.learning_rate,
            "batch_size": options.batch_size,
            "seed": options.seed,
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        fitted = fit(mixed, request, Path(tmp), progress=progress)
        fitted.start = {"kind": "retrained", "version": served_card.version, "start": fitted.start}
        result = package(
            full,
            fitted,
            out_dir,
            options=train_options,
            tag=options.tag,
            provenance={"retraining": record},
            progress=progress,
            lexical=lexical,
        )
    figures = {}
    for name, directory in (("candidate", out_dir), ("served", served_dir)):
        model = SentimentModel.load(directory, threads=threads, runtime=runtime)
        figures[name] = slice_figures(model, split.test, parts.holdback)
    candidate = {**figures["candidate"], "ece": float(result.card.metrics["test"]["ece"])}
    decision = decide_retrain(candidate, figures["served"], options.rules)
    card = replace(result.card, retraining={**record, "gate": decision.to_dict()})
    card.write(out_dir)
    result.card = card
    return RetrainResult(result, parts, plan, decision)
