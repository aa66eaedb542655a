"""One classified review, and the two outputs built from it: the ``reviews`` row and the
``review.sentiment`` event. Pure.

Both outputs are built from the same :class:`ClassifiedReview`, so the topic and the table
cannot disagree. ``ReviewRow``'s attribute names are the ``reviews`` columns, which the sink
owns (``stream.sink.store.REVIEW_COLUMNS``; a test keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol

from model.labels import SENTIMENTS
from stream.events import SCHEMA_VERSION, Probabilities, ReviewSentiment
from stream.events import format_timestamp as _format
from stream.keywords import ReviewTerms
from stream.validation import ValidReview


class PredictionLike(Protocol):
    """What ``model.predictor.Prediction`` provides (kept structural: no model import here)."""

    label: str
    confidence: float
    probabilities: Mapping[str, float]


@lru_cache(maxsize=4096)
def whole_second(moment: datetime) -> datetime:
    """UTC, timezone-aware, microseconds dropped (ClickHouse ``DateTime`` precision).
    Remembered, as :func:`stream.events.format_timestamp` is."""
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class ClassifiedReview:
    """A valid review with its terms and prediction: everything its outputs are made of."""

    review: ValidReview
    terms: ReviewTerms
    label: str
    confidence: float
    probabilities: tuple[float, float, float]  # in SENTIMENTS order
    model_version: str
    processed_at: datetime  # whole second, UTC
    tokens: int = 0  # tokens the model saw (0: the prediction did not count them)
    unknown_tokens: int = 0  # of which unknown to its tokenizer

    @classmethod
    def of(
        cls,
        review: ValidReview,
        terms: ReviewTerms,
        prediction: PredictionLike,
        *,
        model_version: str,
        processed_at: datetime,
    ) -> ClassifiedReview:
        """Check the model's label and keep its probabilities in ``SENTIMENTS`` order. Token
        counts (``model.predictor.Prediction.tokens``/``unknown_tokens``) are 0 when the
        prediction has none."""
        if prediction.label not in SENTIMENTS:
            raise ValueError(f"model label {prediction.label!r} is not one of {SENTIMENTS}")
        negative, neutral, positive = (
            float(prediction.probabilities.get(label, 0.0)) for label in SENTIMENTS
        )
        return cls(
            review=review,
            terms=terms,
            label=prediction.label,
            confidence=float(prediction.confidence),
            probabilities=(negative, neutral, positive),
            model_version=model_version,
            processed_at=whole_second(processed_at),
            tokens=int(getattr(prediction, "tokens", 0)),
            unknown_tokens=int(getattr(prediction, "unknown_tokens", 0)),
        )


@dataclass(frozen=True)
class ReviewRow:
    """One ``reviews`` row; attribute names and order are the table's columns."""

    review_id: str
    product_id: str
    category: str
    user_id: str
    rating: int | None
    text: str
    sentiment: str
    confidence: float
    prob_negative: float
    prob_neutral: float
    prob_positive: float
    keywords: list[str]
    complaint_keywords: list[str]
    model_version: str
    created_at: datetime
    processed_at: datetime
    tokens: int = 0
    unknown_tokens: int = 0


def build_review_row(classified: ClassifiedReview) -> ReviewRow:
    """The ``reviews`` row. ``text`` is the cleaned text, which is what the model saw."""
    event = classified.review.event
    negative, neutral, positive = classified.probabilities
    return ReviewRow(
        review_id=event.review_id,
        product_id=event.product_id,
        category=event.category,
        user_id=event.user_id,
        rating=event.rating,
        text=classified.review.clean_text,
        sentiment=classified.label,
        confidence=classified.confidence,
        prob_negative=negative,
        prob_neutral=neutral,
        prob_positive=positive,
        keywords=list(classified.terms.keywords),
        complaint_keywords=list(classified.terms.complaint_keywords),
        model_version=classified.model_version,
        created_at=whole_second(classified.review.created_at),
        processed_at=classified.processed_at,
        tokens=classified.tokens,
        unknown_tokens=classified.unknown_tokens,
    )


def build_sentiment_event(classified: ClassifiedReview) -> ReviewSentiment:
    """The ``review.sentiment`` event (probabilities rounded to 6 places for the wire)."""
    event = classified.review.event
    negative, neutral, positive = (round(p, 6) for p in classified.probabilities)
    return ReviewSentiment(
        schema_version=SCHEMA_VERSION,
        review_id=event.review_id,
        product_id=event.product_id,
        category=event.category,
        user_id=event.user_id,
        rating=event.rating,
        sentiment=classified.label,  # type: ignore[arg-type]  # checked in ClassifiedReview.of
        confidence=round(classified.confidence, 6),
        probabilities=Probabilities(negative=negative, neutral=neutral, positive=positive),
        keywords=list(classified.terms.keywords),
        complaint_keywords=list(classified.terms.complaint_keywords),
        model_version=classified.model_version,
        created_at=_format(classified.review.created_at),
        processed_at=_format(classified.processed_at),
    )
