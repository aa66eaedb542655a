"""``reviewpulse retrain``: fine-tune the served model on its own rated traffic.

1. Read the rated reviews ClickHouse stored since the served model was built
   (``stream.sink.reads.read_rated_since``); map ratings to labels and split them in time
   order: training, validation, and the newest slice held back as a second test set
   (:mod:`training.traffic`).
2. Rebuild the served model's corpus split (its hash must match the card's), and mix corpus
   training reviews with traffic by the rule of :func:`training.traffic.plan_mix`.
3. Refit the TF-IDF half on corpus + traffic (traffic weighted to the rule's share). Fine-tune
   the served network (CPU, minutes: the student is small) in a few runs
   (:class:`training.selection.FineTuneRun`: a traffic share and a number of epochs; by default
   the rule's share for 1 epoch and half traffic for 2); every run's epoch ends are candidates.
4. Choose the candidate, the TF-IDF half's C and the fusion weight on validation by
   :mod:`training.selection`: corpus and traffic validation each weigh a fixed share
   (``traffic_validation_weight``, half), and corpus validation accuracy must stay within the
   gate's ``max_corpus_drop`` of the served model's. Calibrate on the same weighted validation
   and evaluate once on the corpus test split (:func:`training.train.package`).
5. Judge candidate and served model, through the serving runtime, on the corpus test split and
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
from training.lexical import LexicalRequest, choose_weight, fit_lexical, nll_rows
from training.pipeline import PreparedData
from training.selection import (
    DEFAULT_RUNS,
    SELECTION_RULE,
    FineTuneRun,
    WeightedValidation,
    candidate_name,
    choose,
    describe_runs,
    rounded,
)
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
    from training.bert import TrainOptions
    from training.train import Fitted, TrainResult

EXIT_NO_RATINGS = 4  # nothing to learn from: no rated reviews in the window


class NoRatings(RuntimeError):
    """ClickHouse holds no rated reviews in the window retraining reads."""


@dataclass(frozen=True)
class RetrainOptions:
    holdback: float = 0.2  # newest share of the rated traffic, held back as a test set
    validation: float = 0.1  # the share just before it: calibration and model selection
    mix: MixRule = field(default_factory=MixRule)
    runs: tuple[FineTuneRun, ...] = DEFAULT_RUNS  # each run's epoch ends are candidates
    traffic_validation_weight: float = 0.5  # the traffic's share of the validation weight
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
    plan: MixPlan  # the chosen candidate's mix
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
    from training.train import package

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
    traffic_validation = [r.as_review() for r in parts.binary("validation")]
    full = PreparedData(
        split=Split(
            train=split.train + train_traffic,
            validation=split.validation + traffic_validation,
            test=split.test,
            leaks_dropped=dict(split.leaks_dropped),
        ),
        cleaning=corpus.cleaning,
        sources=[*corpus.sources, traffic.source],
    )
    served = SentimentModel.load(served_dir, threads=threads, runtime=runtime)
    served_corpus_validation = served_accuracy(served, split.validation)
    weighting = WeightedValidation(
        traffic=np.array([False] * len(split.validation) + [True] * len(traffic_validation)),
        traffic_weight=options.traffic_validation_weight,
        min_corpus_accuracy=served_corpus_validation - options.rules.max_corpus_drop,
    )
    train_options = TrainOptions(
        epochs=1.0,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        max_length=served_card.max_length,
        seed=options.seed,
        text_prefix=served_card.text_prefix,
        eval_every_epoch=False,  # each epoch end is scored on weighted validation instead
    )
    validation = _Validation.of(full.split.validation, served_card.text_prefix, weighting)
    lexical = None
    if options.lexical:
        lexical, validation = _lexical_half(full.split.train, len(split.train), plan, validation)
    with tempfile.TemporaryDirectory() as tmp:
        search = _fine_tune_candidates(
            Path(served_dir),
            full,
            len(split.train),
            plan,
            options,
            train_options,
            validation,
            Path(tmp),
            progress=progress,
        )
        chosen_name = choose(
            {name: c.figures for name, c in search.candidates.items()},
            weighting.min_corpus_accuracy,
        )
        chosen = search.candidates[chosen_name]
        fitted, chosen_plan = search.runs[chosen.run]
        fitted.model.load_state_dict(chosen.state)
        fitted.start = {"kind": "retrained", "version": served_card.version, "start": fitted.start}
        record = {
            "served_version": served_card.version,
            "since": traffic.since.isoformat() if traffic.since else None,
            "clickhouse_database": traffic.database,
            "corpus": {
                "split_sha256": split.sha256,
                "sources": [asdict(s) for s in corpus.sources],
            },
            "traffic": {"source": asdict(traffic.source), **parts.summary()},
            "mix": {
                **chosen_plan.to_dict(),
                "rule_share": round(plan.share, 4),
                "tfidf_traffic_weight": round(plan.traffic_weight, 4),
                "tfidf": "the TF-IDF half fits on every corpus and traffic training review, "
                "the traffic weighted to the mix rule's share (rule_share)",
            },
            "selection": {
                "rule": SELECTION_RULE,
                "runs": describe_runs(options.runs),
                "traffic_validation_weight": options.traffic_validation_weight,
                "corpus_validation_reviews": len(split.validation),
                "traffic_validation_reviews": len(traffic_validation),
                "served_corpus_validation_accuracy": round(served_corpus_validation, 4),
                "min_corpus_validation_accuracy": round(weighting.min_corpus_accuracy, 4),
                "scored": "each candidate's network (PyTorch) fused with the TF-IDF half at "
                "its own best fusion weight by the same rule",
                "candidates": search.describe(),
                "chosen": chosen_name,
                "run_seconds": {
                    r.name: round(f.history.seconds, 1) for r, (f, _) in search.runs.items()
                },
            },
            "options": {
                "holdback": options.holdback,
                "validation": options.validation,
                "runs": describe_runs(options.runs),
                "epochs": chosen.epochs_done,
                "learning_rate": options.learning_rate,
                "batch_size": options.batch_size,
                "seed": options.seed,
                "traffic_validation_weight": options.traffic_validation_weight,
            },
        }
        result = package(
            full,
            fitted,
            out_dir,
            options=replace(train_options, epochs=chosen.epochs_done),
            tag=options.tag,
            provenance={"retraining": record},
            progress=progress,
            lexical=lexical,
            validation=weighting,
        )
    figures = {}
    for name, model in (
        ("candidate", SentimentModel.load(out_dir, threads=threads, runtime=runtime)),
        ("served", served),
    ):
        figures[name] = slice_figures(model, split.test, parts.holdback)
    candidate = {**figures["candidate"], "ece": float(result.card.metrics["test"]["ece"])}
    decision = decide_retrain(candidate, figures["served"], options.rules)
    card = replace(result.card, retraining={**record, "gate": decision.to_dict()})
    card.write(out_dir)
    result.card = card
    return RetrainResult(result, parts, chosen_plan, decision)


@dataclass(frozen=True)
class _Validation:
    """The validation reviews every choice is made on: texts as the models see them, labels,
    the weighting, and the TF-IDF half's log-odds once it is fitted."""

    prefix: str  # the served model's text prefix
    texts: list[str]
    y: np.ndarray
    weighting: WeightedValidation
    lexical_log_odds: np.ndarray | None = None

    @classmethod
    def of(cls, reviews: Sequence[Any], prefix: str, weighting: WeightedValidation) -> _Validation:
        from training.pipeline import label_ids

        texts = [prefix + r.text for r in reviews]
        return cls(prefix, texts, label_ids(reviews, BINARY_SENTIMENTS), weighting)


def _lexical_half(
    train: Sequence[Any], corpus_rows: int, plan: MixPlan, validation: _Validation
) -> tuple[LexicalRequest, _Validation]:
    """The TF-IDF half refit on every training review (the first ``corpus_rows`` from the
    corpus, the rest traffic, weighted to the mix rule's share), chosen on the weighted
    validation; and the validation with its log-odds."""
    from training.pipeline import label_ids

    weights = np.concatenate(
        [np.ones(corpus_rows), np.full(len(train) - corpus_rows, plan.traffic_weight)]
    )
    request = LexicalRequest(train_weights=weights, validation=validation.weighting)
    fitted = fit_lexical(
        [validation.prefix + r.text for r in train],
        label_ids(train, BINARY_SENTIMENTS),
        validation.texts,
        validation.y,
        request,
    )
    return replace(request, fitted=fitted), replace(
        validation, lexical_log_odds=fitted.model.log_odds(validation.texts)
    )


@dataclass
class _Search:
    """Every fine-tuning run's epoch ends, scored, and each run's result and mix."""

    candidates: dict[str, _Candidate] = field(default_factory=dict)
    runs: dict[FineTuneRun, tuple[Fitted, MixPlan]] = field(default_factory=dict)

    def describe(self) -> dict[str, dict[str, Any]]:
        """The card's record of each candidate: its mix, epoch and validation figures."""
        described = {}
        for name, c in self.candidates.items():
            plan = self.runs[c.run][1]
            described[name] = {
                "traffic_share": round(plan.share, 4),
                "corpus_rows": plan.corpus_rows,
                "traffic_rows": plan.traffic_rows,
                "epoch": c.epochs_done,
                "of_epochs": c.run.epochs,
                **rounded(c.figures),
            }
        return described


def _fine_tune_candidates(
    served_dir: Path,
    full: PreparedData,
    corpus_rows: int,
    plan: MixPlan,
    options: RetrainOptions,
    train_options: TrainOptions,
    validation: _Validation,
    work: Path,
    *,
    progress: bool,
) -> _Search:
    """Fine-tune the served network once per run in ``options.runs``, each on its own mix of
    corpus (the first ``corpus_rows`` of ``full``'s training reviews) and traffic, and score
    every epoch end on the weighted validation as it would serve."""
    import torch
    from tokenizers import Tokenizer
    from torch.nn import functional as F

    from training.bert import History, predict_logits
    from training.pipeline import encode
    from training.train import TrainRequest, _pad_id, fit

    corpus_train = full.split.train[:corpus_rows]
    traffic_train = full.split.train[corpus_rows:]
    tokenizer = Tokenizer.from_file(str(served_dir / "tokenizer.json"))
    val_ids = encode(tokenizer, validation.texts, train_options.max_length)
    pad_id = _pad_id(tokenizer)
    target = torch.from_numpy(validation.y)
    search = _Search()
    for run in options.runs:
        run_plan = (
            plan
            if run.share is None
            else plan_mix(
                corpus_rows,
                len(traffic_train),
                replace(options.mix, min_share=run.share, max_share=run.share),
            )
        )
        mix = take(corpus_train, run_plan.corpus_rows, seed="corpus") + take(
            traffic_train, run_plan.traffic_rows, seed="traffic"
        )
        mixed = PreparedData(
            split=Split(train=mix, validation=full.split.validation, test=full.split.test),
            cleaning=full.cleaning,
        )

        def score(model: Any, epoch: int, history: History, run: FineTuneRun = run) -> None:
            logits = predict_logits(model, val_ids, pad_id=pad_id)
            history.val_loss.append(float(F.cross_entropy(torch.from_numpy(logits), target)))
            history.val_accuracy.append(float((logits.argmax(1) == validation.y).mean()))
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            search.candidates[candidate_name(run, epoch)] = _Candidate(
                run,
                epoch,
                history.epochs[-1],
                state,
                _score(logits, validation.lexical_log_odds, validation.y, validation.weighting),
            )

        request = TrainRequest(
            options=replace(train_options, epochs=run.epochs), init_checkpoint=served_dir
        )
        fitted = fit(mixed, request, work / run.name, progress=progress, on_epoch=score)
        search.runs[run] = (fitted, run_plan)
    return search


@dataclass
class _Candidate:
    """A fine-tuning run's network at the end of one of its epochs, scored on validation."""

    run: FineTuneRun
    epoch: int
    epochs_done: float
    state: dict[str, Any]
    figures: dict[str, float]


def _score(
    logits: np.ndarray,
    lexical_log_odds: np.ndarray | None,
    y: np.ndarray,
    weighting: WeightedValidation,
) -> dict[str, float]:
    """A network's validation figures as it would serve: fused with the TF-IDF half at its
    best fusion weight (by the weighting's rule), or alone."""
    if lexical_log_odds is None:
        log_odds = (logits[:, 1] - logits[:, 0]).astype(np.float64)
        right = (log_odds > 0) == (y == 1)
        return weighting.figures(right, nll_rows(log_odds, y, weighting.sample_weights()))
    weight, table = choose_weight(logits, lexical_log_odds, y, validation=weighting)
    return {"fusion_weight": weight, **table[weight]}


def served_accuracy(model: SentimentModel, reviews: Sequence[Any]) -> float:
    """Two-class accuracy of a model as it serves (fused, its runtime) on labelled reviews."""
    y = np.array([BINARY_SENTIMENTS.index(r.label) for r in reviews])
    logits = model.logits([model.text_prefix + r.text for r in reviews])
    return float((logits.argmax(1) == y).mean())
