"""Rated traffic as training data: how ratings map to labels, the time-ordered hold-back, and
how much of it a fine-tuning mix takes. Pure functions over records; the reading is
:mod:`training.retrain`'s (through ``stream.sink.reads``).

Ratings are weak labels: 4-5 stars positive, 1-2 negative (``model.labels.RATINGS``). A 3-star
review means neither, so a two-class model neither trains nor calibrates on it; 3-star reviews
are counted, and those in the held-back slice measure the neutral band: the share of them each
model serves as neutral is reported (not gated).

The mix rule (:func:`plan_mix`): the traffic's share of the fine-tuning set is its natural
share (traffic / (traffic + corpus training reviews)) clamped to ``[min_share, max_share]``
(default 25-50%). Scarce traffic is not repeated: the corpus is subsampled (stratified by
category and label) to ``(1 - share) / share`` times the traffic, so a new domain is not drowned;
abundant traffic is subsampled to ``share / (1 - share)`` times the corpus, so it does not
dominate. The whole mix is capped at ``max_rows`` (CPU minutes), both parts scaled alike. The
TF-IDF half is refitted on every corpus training review and every traffic training review,
the traffic weighted so that its share of the total weight is the same ``share``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from model.labels import NEUTRAL, RATINGS, label_from_rating
from model.text import clean_text
from training.data import Review
from training.dedup import near_duplicate_pairs, near_key

THREE_STAR_RULE = (
    "3-star reviews (neutral) are not used to train or calibrate the two-class model; they are "
    "counted, and the held-back ones give each model's neutral share on them"
)


@dataclass(frozen=True)
class TrafficReview:
    """One rated review from the stream, cleaned, with the label its rating maps to."""

    review_id: str
    text: str
    category: str
    rating: int
    label: str  # model.labels: 4-5 positive, 3 neutral, 1-2 negative
    created_at: datetime

    def as_review(self) -> Review:
        return Review(text=self.text, label=self.label, category=self.category)


@dataclass(frozen=True)
class TrafficSplit:
    """Rated traffic in time order: training, validation (just before the hold-back) and the
    held-back newest slice, plus what was dropped on the way and why."""

    train: list[TrafficReview]
    validation: list[TrafficReview]
    holdback: list[TrafficReview]
    ratings: dict[int, int]  # every rating read, before dropping anything
    dropped: dict[str, int] = field(default_factory=dict)

    def binary(self, part: str) -> list[TrafficReview]:
        """A part without its 3-star reviews (what a two-class model learns and is scored on)."""
        return [r for r in getattr(self, part) if r.label != NEUTRAL]

    def summary(self) -> dict:
        parts = {"train": self.train, "validation": self.validation, "holdback": self.holdback}
        return {
            "ratings_read": {str(k): v for k, v in sorted(self.ratings.items())},
            "mapping": {label: list(ratings) for label, ratings in RATINGS.items()},
            "three_star_rule": THREE_STAR_RULE,
            "dropped": dict(self.dropped),
            "parts": {
                name: {
                    "reviews": len(reviews),
                    "labels": dict(sorted(Counter(r.label for r in reviews).items())),
                    "from": reviews[0].created_at.isoformat() if reviews else None,
                    "to": reviews[-1].created_at.isoformat() if reviews else None,
                }
                for name, reviews in parts.items()
            },
        }


def split_traffic(
    rated: Sequence[TrafficReview],
    *,
    corpus_train: Sequence[str],
    corpus_eval: Sequence[str],
    holdback: float = 0.2,
    validation: float = 0.1,
) -> TrafficSplit:
    """Clean-text traffic (oldest first) into training, validation and the newest ``holdback``
    share. Dropped on the way: empty texts, repeats (first kept), texts the corpus already has
    (equal after normalisation), and fuzzy near-duplicates (:func:`near_duplicate_pairs`) of the
    corpus's validation and test reviews (``corpus_eval``: they must stay unseen); then
    validation and hold-back reviews that near-duplicate training reviews (as the corpus split
    does)."""
    if not 0 < holdback < 1 or not 0 <= validation < 1 or holdback + validation >= 1:
        raise ValueError("holdback and validation must be in (0, 1) and sum below 1")
    ratings = Counter(r.rating for r in rated)
    corpus_keys = {near_key(t) for t in (*corpus_train, *corpus_eval)}
    dropped = Counter[str]()
    seen: set[str] = set()
    kept: list[TrafficReview] = []
    for review in sorted(rated, key=lambda r: (r.created_at, r.review_id)):
        key = near_key(review.text)
        if not key:
            dropped["empty"] += 1
        elif key in seen:
            dropped["duplicates"] += 1
        elif key in corpus_keys:
            dropped["in_corpus"] += 1
        else:
            seen.add(key)
            kept.append(review)
    leaks = near_duplicate_pairs(list(corpus_eval), [r.text for r in kept])
    dropped["near_duplicates_of_corpus_eval"] = len(leaks)
    kept = [r for i, r in enumerate(kept) if i not in leaks]
    n_hold = round(len(kept) * holdback)
    n_val = round(len(kept) * validation)
    train = kept[: len(kept) - n_hold - n_val]
    val = kept[len(train) : len(kept) - n_hold]
    hold = kept[len(kept) - n_hold :]
    reference = [*corpus_train, *(r.text for r in train)]
    val_leaks = near_duplicate_pairs(reference, [r.text for r in val])
    hold_leaks = near_duplicate_pairs([*reference, *(r.text for r in val)], [r.text for r in hold])
    dropped["near_duplicates_of_training"] = len(val_leaks) + len(hold_leaks)
    return TrafficSplit(
        train=train,
        validation=[r for i, r in enumerate(val) if i not in val_leaks],
        holdback=[r for i, r in enumerate(hold) if i not in hold_leaks],
        ratings=dict(ratings),
        dropped=dict(dropped),
    )


def traffic_review(
    review_id: str, text: str, category: str | None, rating: int, created_at: datetime
) -> TrafficReview:
    """A stored rated review as training data: text cleaned, label from the rating."""
    return TrafficReview(
        review_id=review_id,
        text=clean_text(text),
        category=category or "unknown",
        rating=int(rating),
        label=label_from_rating(rating),
        created_at=created_at,
    )


@dataclass(frozen=True)
class MixRule:
    min_share: float = 0.25
    max_share: float = 0.5
    max_rows: int = 40_000

    def __post_init__(self) -> None:
        if not 0 < self.min_share <= self.max_share < 1:
            raise ValueError("need 0 < min_share <= max_share < 1")
        if self.max_rows < 2:
            raise ValueError("max_rows must be at least 2")


@dataclass(frozen=True)
class MixPlan:
    corpus_rows: int  # corpus training reviews in the fine-tuning mix
    traffic_rows: int  # traffic training reviews in it
    share: float  # the traffic's share of the mix (and of the TF-IDF half's sample weight)
    traffic_weight: float  # each traffic review's weight for the TF-IDF half (corpus: 1)
    rule: MixRule

    def to_dict(self) -> dict:
        return {
            "corpus_rows": self.corpus_rows,
            "traffic_rows": self.traffic_rows,
            "traffic_share": round(self.share, 4),
            "tfidf_traffic_weight": round(self.traffic_weight, 4),
            "rule": f"traffic share of the mix = its natural share clamped to "
            f"[{self.rule.min_share}, {self.rule.max_share}]: the larger side is subsampled, "
            f"nothing is repeated; at most {self.rule.max_rows} rows",
        }


def plan_mix(corpus: int, traffic: int, rule: MixRule = MixRule()) -> MixPlan:
    """How many corpus and traffic training reviews the fine-tuning mix takes (module doc)."""
    if traffic <= 0:
        raise ValueError("no traffic to mix")
    if corpus <= 0:
        return MixPlan(0, min(traffic, rule.max_rows), 1.0, 1.0, rule)
    natural = traffic / (traffic + corpus)
    share = min(max(natural, rule.min_share), rule.max_share)
    if natural < share:  # scarce traffic: subsample the corpus
        corpus_rows, traffic_rows = min(corpus, round(traffic * (1 - share) / share)), traffic
    elif natural > share:  # abundant traffic: subsample it
        corpus_rows, traffic_rows = corpus, min(traffic, round(corpus * share / (1 - share)))
    else:
        corpus_rows, traffic_rows = corpus, traffic
    total = corpus_rows + traffic_rows
    if total > rule.max_rows:
        scale = rule.max_rows / total
        corpus_rows, traffic_rows = round(corpus_rows * scale), max(1, round(traffic_rows * scale))
    weight = share / (1 - share) * corpus / traffic
    return MixPlan(corpus_rows, traffic_rows, share, weight, rule)


def take(reviews: Sequence[Review], rows: int, *, seed: str = "mix") -> list[Review]:
    """A deterministic sample of ``rows`` reviews, proportional per (category, label)."""
    if rows >= len(reviews):
        return list(reviews)
    strata: dict[tuple[str, str], list[Review]] = {}
    for review in reviews:
        strata.setdefault((review.category, review.label), []).append(review)
    out: list[Review] = []
    for key in sorted(strata):
        members = sorted(
            strata[key], key=lambda r: hashlib.sha1(f"{seed}\t{r.text}".encode()).hexdigest()
        )
        out.extend(members[: round(len(members) * rows / len(reviews))])
    return out
