"""The shadow comparison and the promotion rules. Pure.

Both models labelled the same reviews (the served model live, the candidate in shadow), so
the comparison is paired: rating agreement of each (a rating is a weak label: 4-5 positive,
3 neutral, 1-2 negative, :func:`model.labels.label_from_rating`), how often the two agree,
their label shares, their forward time per review, and the rated reviews only one of them got
right (McNemar's discordant pairs: the gain is their difference over the rated reviews).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from model.labels import SENTIMENTS, label_from_rating

EXIT_NOT_PROMOTED = 3  # like training's gate: the comparison did not hold up, CURRENT stays


class Cell(Protocol):
    """``stream.sink.shadow.ShadowCell``: reviews with these two labels and this rating."""

    served: str
    candidate: str
    rating: int  # 0 = no rating
    reviews: int
    served_seconds: float
    candidate_seconds: float


@dataclass(frozen=True)
class ModelFigures:
    version: str
    rating_agreement: float | None  # share of rated reviews whose label matches the rating
    label_shares: dict[str, float]  # over all compared reviews
    ms_per_review: float | None  # mean forward time per review


@dataclass(frozen=True)
class ShadowComparison:
    candidate: ModelFigures
    served: ModelFigures
    reviews: int  # scored by both
    rated: int  # of which carry a rating
    agreement: float | None  # candidate and served give the same label
    candidate_only_right: int  # rated reviews the candidate gets right and served wrong
    served_only_right: int
    rating_confusion: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    @property
    def gain(self) -> float | None:
        """Candidate minus served rating agreement, on the same rated reviews."""
        if not self.rated:
            return None
        return (self.candidate_only_right - self.served_only_right) / self.rated

    @property
    def mcnemar_z(self) -> float | None:
        """The paired difference in units of its standard error (positive: candidate
        better); None without discordant pairs."""
        discordant = self.candidate_only_right + self.served_only_right
        if not discordant:
            return None
        return (self.candidate_only_right - self.served_only_right) / math.sqrt(discordant)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "gain": _round(self.gain),
            "mcnemar_z": _round(self.mcnemar_z),
        }


def compare(cells: Iterable[Cell], *, candidate: str, served: str) -> ShadowComparison:
    """The comparison of ``candidate`` with ``served`` from the shadow table's cells."""
    cells = list(cells)
    reviews = sum(c.reviews for c in cells)
    rated_cells = [c for c in cells if c.rating]
    rated = sum(c.reviews for c in rated_cells)
    served_right = candidate_right = candidate_only = served_only = 0
    confusion: dict[str, dict[str, dict[str, int]]] = {
        role: {truth: dict.fromkeys(SENTIMENTS, 0) for truth in SENTIMENTS}
        for role in ("served", "candidate")
    }
    for cell in rated_cells:
        truth = label_from_rating(cell.rating)
        s_ok, c_ok = cell.served == truth, cell.candidate == truth
        served_right += cell.reviews * s_ok
        candidate_right += cell.reviews * c_ok
        candidate_only += cell.reviews * (c_ok and not s_ok)
        served_only += cell.reviews * (s_ok and not c_ok)
        confusion["served"][truth][cell.served] += cell.reviews
        confusion["candidate"][truth][cell.candidate] += cell.reviews
    same = sum(c.reviews for c in cells if c.served == c.candidate)

    def figures(version: str, role: str) -> ModelFigures:
        right = candidate_right if role == "candidate" else served_right
        seconds = sum(getattr(c, f"{role}_seconds") for c in cells)
        shares = {
            label: _share(sum(c.reviews for c in cells if getattr(c, role) == label), reviews)
            for label in SENTIMENTS
        }
        return ModelFigures(
            version=version,
            rating_agreement=_share(right, rated) if rated else None,
            label_shares=shares,
            ms_per_review=round(1000 * seconds / reviews, 4) if reviews else None,
        )

    return ShadowComparison(
        candidate=figures(candidate, "candidate"),
        served=figures(served, "served"),
        reviews=reviews,
        rated=rated,
        agreement=_share(same, reviews) if reviews else None,
        candidate_only_right=candidate_only,
        served_only_right=served_only,
        rating_confusion=confusion,
    )


@dataclass(frozen=True)
class PromotionRules:
    min_rated: int = 1000  # rated reviews both models scored
    max_agreement_drop: float = 0.005  # served minus candidate rating agreement, at most


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reasons: list[str]  # every failed rule; empty when promoted
    comparison: ShadowComparison
    rules: PromotionRules

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reasons": self.reasons,
            "candidate": asdict(self.comparison.candidate),
            "served": asdict(self.comparison.served),
            "compared": {
                key: value
                for key, value in self.comparison.to_dict().items()
                if key not in ("candidate", "served", "rating_confusion")
            },
            "rules": asdict(self.rules),
        }


def decide_promotion(comparison: ShadowComparison, rules: PromotionRules) -> PromotionDecision:
    """Promote when enough rated reviews were compared and the candidate's rating agreement
    is not worse than the served model's by more than the margin."""
    reasons = []
    if comparison.rated < rules.min_rated:
        reasons.append(
            f"only {comparison.rated} rated reviews compared (at least {rules.min_rated} needed)"
        )
    gain = comparison.gain
    if gain is None:
        reasons.append("no rated review was scored by both models")
    elif gain < -rules.max_agreement_drop:
        reasons.append(
            f"rating agreement {comparison.candidate.rating_agreement:.4f} vs served "
            f"{comparison.served.rating_agreement:.4f} (drop {-gain:.4f} > "
            f"{rules.max_agreement_drop})"
        )
    return PromotionDecision(not reasons, reasons, comparison, rules)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
