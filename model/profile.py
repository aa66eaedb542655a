"""Traffic profiles: what a model's inputs and outputs look like, as a few distributions.

A :class:`TrafficProfile` summarises a set of reviews the model classified: the share of each
predicted label (the neutral share is the neutral band's share), a histogram of confidences,
the share of tokens the tokenizer did not know, and a histogram of cleaned-text lengths. Training
stores one computed on the validation split in the model card (``ModelCard.reference``, built by
:func:`reference_profile`); the stream computes the same figures per category over a window in
ClickHouse and compares them with :func:`psi`.

Histograms use fixed bins, given by each bin's lower bound (:data:`CONFIDENCE_EDGES`,
:data:`TEXT_LENGTH_EDGES`): bin ``i`` holds values ``edges[i] <= v < edges[i + 1]``, the last bin
is open above, and values below ``edges[0]`` count in the first bin. A profile carries its own
edges, so a card written with other edges is still compared bin for bin.

Standard library only: :func:`reference_profile` takes the model structurally (the card imports
this module, and the predictor the card).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

from model.labels import SENTIMENTS

CONFIDENCE_EDGES: tuple[float, ...] = (0.0, *(round(0.4 + 0.05 * i, 2) for i in range(12)))
"""Lower bounds of the confidence bins: 0.05 wide (a served confidence is at least 1/3, and
a neutral band caps it well below 1: the shipped model's stays under 0.81)."""

TEXT_LENGTH_EDGES: tuple[float, ...] = (0, 10, 20, 40, 80, 160, 320)
"""Lower bounds of the cleaned-text length bins, in characters (the corpus median is ~34)."""

PSI_EPSILON = 1e-4
"""The share an empty bin is given in :func:`psi`, so that the logarithm stays finite."""


class Scored(Protocol):
    """What :func:`profile_of` reads of a prediction (``model.predictor.Prediction``)."""

    label: str
    confidence: float
    tokens: int
    unknown_tokens: int


class Classifier(Protocol):
    """What :func:`reference_profile` needs of ``model.predictor.SentimentModel``."""

    def predict_cleaned(self, texts: Sequence[str]) -> Sequence[Scored]: ...


@dataclass(frozen=True)
class Histogram:
    """Shares of values per bin; ``edges`` are the bins' lower bounds (see the module doc)."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.shares) or not self.edges:
            raise ValueError(f"{len(self.edges)} edges for {len(self.shares)} shares")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError(f"edges must rise strictly: {self.edges}")

    @classmethod
    def of_counts(cls, edges: Sequence[float], counts: Sequence[float]) -> Self:
        """Shares from per-bin counts (all zero when there is nothing)."""
        total = float(sum(counts))
        shares = tuple(c / total if total else 0.0 for c in counts)
        return cls(edges=tuple(float(e) for e in edges), shares=shares)

    @classmethod
    def of_values(cls, edges: Sequence[float], values: Iterable[float]) -> Self:
        return cls.of_counts(edges, bin_counts(edges, values))

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "shares": list(self.shares)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            edges=tuple(float(e) for e in data["edges"]),
            shares=tuple(float(s) for s in data["shares"]),
        )


def bin_index(edges: Sequence[float], value: float) -> int:
    """The bin of ``value``: the last edge at or below it (the first bin for smaller values)."""
    return max(bisect_right(edges, value) - 1, 0)


def bin_counts(edges: Sequence[float], values: Iterable[float]) -> list[int]:
    counts = [0] * len(edges)
    for value in values:
        counts[bin_index(edges, value)] += 1
    return counts


def psi(expected: Sequence[float], actual: Sequence[float], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of ``actual`` shares against ``expected`` shares.

    ``sum((a - e) * ln(a / e))`` over the bins, each share floored at ``epsilon``. 0 for equal
    distributions; by convention below 0.1 is stable, 0.1-0.25 a moderate shift, above 0.25 a
    major one. Both arguments are shares of the same bins (each summing to 1, or all zero)."""
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} expected shares but {len(actual)} actual")
    if epsilon <= 0:
        raise ValueError("epsilon must be positive")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(float(e), epsilon), max(float(a), epsilon)
        total += (a - e) * math.log(a / e)
    return total


def histogram_psi(expected: Histogram, actual: Histogram, epsilon: float = PSI_EPSILON) -> float:
    """:func:`psi` of two histograms over the same bins."""
    if tuple(expected.edges) != tuple(actual.edges):
        raise ValueError(f"different bins: {expected.edges} and {actual.edges}")
    return psi(expected.shares, actual.shares, epsilon)


def label_psi(
    expected: Mapping[str, float], actual: Mapping[str, float], epsilon: float = PSI_EPSILON
) -> float:
    """:func:`psi` of predicted-label shares (labels missing from a mapping count as 0)."""
    return psi(
        [expected.get(label, 0.0) for label in SENTIMENTS],
        [actual.get(label, 0.0) for label in SENTIMENTS],
        epsilon,
    )


@dataclass(frozen=True)
class TrafficProfile:
    """The distributions of one set of classified reviews (see the module doc)."""

    reviews: int
    label_shares: Mapping[str, float] = field(hash=False)  # every served label, sums to 1
    confidence: Histogram
    unknown_token_share: float  # unknown tokens / tokens, over all the reviews
    text_length: Histogram  # cleaned text, in characters
    # Share of reviews whose predicted label is their true label (a neutral prediction of a
    # two-class review counts as a miss): what rating feedback on clearly rated reviews
    # (1-2, 4-5 stars) is compared with. None when the profile was built without labels.
    agreement: float | None = None
    # The same profile per category with at least MIN_CATEGORY_REVIEWS reviews: categories
    # differ (lengths, label balance, difficulty), so a known category is compared with its
    # own reference and an unknown one with the whole. None: built without categories.
    categories: Mapping[str, TrafficProfile] | None = field(default=None, hash=False)

    @property
    def neutral_share(self) -> float:
        """The share of reviews served as neutral (inside the neutral band)."""
        return float(self.label_shares.get("neutral", 0.0))

    def for_category(self, category: str) -> TrafficProfile:
        """The category's own profile when this one has it, else this (the whole)."""
        return (self.categories or {}).get(category, self)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "reviews": self.reviews,
            "label_shares": {label: self.label_shares.get(label, 0.0) for label in SENTIMENTS},
            "confidence": self.confidence.to_dict(),
            "unknown_token_share": self.unknown_token_share,
            "text_length": self.text_length.to_dict(),
        }
        if self.agreement is not None:
            data["agreement"] = self.agreement
        if self.categories is not None:
            data["categories"] = {name: p.to_dict() for name, p in self.categories.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        categories = data.get("categories")
        return cls(
            reviews=int(data["reviews"]),
            label_shares={k: float(v) for k, v in data["label_shares"].items()},
            confidence=Histogram.from_dict(data["confidence"]),
            unknown_token_share=float(data["unknown_token_share"]),
            text_length=Histogram.from_dict(data["text_length"]),
            agreement=None if data.get("agreement") is None else float(data["agreement"]),
            categories=(
                None
                if categories is None
                else {name: cls.from_dict(p) for name, p in categories.items()}
            ),
        )


MIN_CATEGORY_REVIEWS = 100
"""Reviews a category needs for its own reference profile (fewer: the whole is its reference)."""


def label_shares(labels: Iterable[str]) -> dict[str, float]:
    counts = dict.fromkeys(SENTIMENTS, 0)
    for label in labels:
        if label not in counts:
            raise ValueError(f"label {label!r} is not one of {SENTIMENTS}")
        counts[label] += 1
    total = sum(counts.values())
    return {label: (n / total if total else 0.0) for label, n in counts.items()}


def profile_of(
    predictions: Sequence[Scored],
    text_lengths: Sequence[int],
    labels: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    *,
    confidence_edges: Sequence[float] = CONFIDENCE_EDGES,
    text_length_edges: Sequence[float] = TEXT_LENGTH_EDGES,
    min_category_reviews: int = MIN_CATEGORY_REVIEWS,
) -> TrafficProfile:
    """The profile of classified reviews: one prediction (with its token counts) and one
    cleaned-text length (characters) per review; optionally their true labels (which gives
    :attr:`TrafficProfile.agreement`) and their categories (which gives
    :attr:`TrafficProfile.categories`)."""
    for name, given in (("lengths", text_lengths), ("labels", labels), ("categories", categories)):
        if given is not None and len(given) != len(predictions):
            raise ValueError(f"{len(predictions)} predictions but {len(given)} {name}")
    edges = {"confidence_edges": confidence_edges, "text_length_edges": text_length_edges}
    by_category = None
    if categories is not None:
        members: dict[str, list[int]] = {}
        for index, category in enumerate(categories):
            members.setdefault(category, []).append(index)
        by_category = {
            category: profile_of(
                [predictions[i] for i in indices],
                [text_lengths[i] for i in indices],
                None if labels is None else [labels[i] for i in indices],
                **edges,
            )
            for category, indices in sorted(members.items())
            if len(indices) >= min_category_reviews
        }
    agreement = None
    if labels is not None and predictions:
        hits = sum(p.label == label for p, label in zip(predictions, labels, strict=True))
        agreement = hits / len(predictions)
    tokens = sum(p.tokens for p in predictions)
    unknown = sum(p.unknown_tokens for p in predictions)
    return TrafficProfile(
        reviews=len(predictions),
        label_shares=label_shares(p.label for p in predictions),
        confidence=Histogram.of_values(confidence_edges, (p.confidence for p in predictions)),
        unknown_token_share=unknown / tokens if tokens else 0.0,
        text_length=Histogram.of_values(text_length_edges, text_lengths),
        agreement=agreement,
        categories=by_category,
    )


def reference_profile(
    model: Classifier,
    cleaned_texts: Sequence[str],
    labels: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
) -> TrafficProfile:
    """The profile of ``model`` on ``cleaned_texts`` (already through ``clean_text``): one
    batched forward pass over the texts, the same that serving runs, so the reference matches
    what the stream will measure. Training passes its validation split, with its labels (for
    :attr:`TrafficProfile.agreement`) and its categories (for per-category references)."""
    texts = list(cleaned_texts)
    predictions = model.predict_cleaned(texts)
    return profile_of(predictions, [len(text) for text in texts], labels, categories)
