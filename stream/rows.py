"""Row and output-event building for one classified review. Pure.

The row dict keys are exactly the ``reviews`` columns in ARCHITECTURE.md; the sentiment
event is built from the row so the topic and the table can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from stream.events import SCHEMA_VERSION, SENTIMENTS, Probabilities, ReviewSentiment
from stream.events import format_timestamp as _format
from stream.keywords import ReviewTerms
from stream.validation import ValidReview

REVIEW_COLUMNS: tuple[str, ...] = (
    "review_id",
    "product_id",
    "category",
    "user_id",
    "rating",
    "text",
    "sentiment",
    "confidence",
    "prob_negative",
    "prob_neutral",
    "prob_positive",
    "keywords",
    "complaint_keywords",
    "model_version",
    "created_at",
    "processed_at",
)


class PredictionLike(Protocol):
    """What ``model.predictor.Prediction`` provides (kept structural: no torch import here)."""

    label: str
    confidence: float
    probabilities: Mapping[str, float]


def whole_second(moment: datetime) -> datetime:
    """UTC, timezone-aware, microseconds dropped (ClickHouse ``DateTime`` precision)."""
    return moment.astimezone(UTC).replace(microsecond=0)


def build_review_row(
    review: ValidReview,
    terms: ReviewTerms,
    prediction: PredictionLike,
    *,
    model_version: str,
    processed_at: datetime,
) -> dict[str, Any]:
    """One ``reviews`` row. ``text`` is the cleaned text, which is what the model saw."""
    if prediction.label not in SENTIMENTS:
        raise ValueError(f"model label {prediction.label!r} is not one of {SENTIMENTS}")
    probabilities = {label: float(prediction.probabilities.get(label, 0.0)) for label in SENTIMENTS}
    event = review.event
    return {
        "review_id": event.review_id,
        "product_id": event.product_id,
        "category": event.category,
        "user_id": event.user_id,
        "rating": event.rating,
        "text": review.clean_text,
        "sentiment": prediction.label,
        "confidence": float(prediction.confidence),
        "prob_negative": probabilities["negative"],
        "prob_neutral": probabilities["neutral"],
        "prob_positive": probabilities["positive"],
        "keywords": list(terms.keywords),
        "complaint_keywords": list(terms.complaint_keywords),
        "model_version": model_version,
        "created_at": whole_second(review.created_at),
        "processed_at": whole_second(processed_at),
    }


def build_sentiment_event(row: Mapping[str, Any]) -> ReviewSentiment:
    """The ``review.sentiment`` event for a row built by ``build_review_row``."""
    return ReviewSentiment(
        schema_version=SCHEMA_VERSION,
        review_id=row["review_id"],
        product_id=row["product_id"],
        category=row["category"],
        user_id=row["user_id"],
        rating=row["rating"],
        sentiment=row["sentiment"],
        confidence=round(row["confidence"], 6),
        probabilities=Probabilities(
            negative=round(row["prob_negative"], 6),
            neutral=round(row["prob_neutral"], 6),
            positive=round(row["prob_positive"], 6),
        ),
        keywords=list(row["keywords"]),
        complaint_keywords=list(row["complaint_keywords"]),
        model_version=row["model_version"],
        created_at=_format(row["created_at"]),
        processed_at=_format(row["processed_at"]),
    )
