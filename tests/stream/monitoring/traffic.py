"""Classified reviews for the monitoring tests, made by the stream's own transforms.

Rows are ``stream.rows.ReviewRow``s built by ``build_review_row`` from a
``model.predictor.Prediction`` that carries token counts, as the worker builds them; the
prediction is the test's input, because the model is not what these tests are about.
"""

from __future__ import annotations

from datetime import UTC, datetime

from model.predictor import Prediction
from model.text import clean_text
from stream.events import ReviewCreated, format_timestamp
from stream.keywords import ReviewTerms
from stream.rows import ClassifiedReview, ReviewRow, build_review_row
from stream.validation import ValidReview


def review_row(
    review_id: str,
    category: str,
    sentiment: str,
    created_at: datetime,
    *,
    confidence: float = 0.75,
    rating: int | None = None,
    text: str = "东西收到了，质量不错",
    tokens: int = 10,
    unknown_tokens: int = 0,
    model_version: str = "v1",
) -> ReviewRow:
    """One ``reviews`` row as the worker would write it."""
    event = ReviewCreated(
        schema_version=1,
        review_id=review_id,
        product_id=f"P-{category}",
        category=category,
        user_id=f"u-{review_id}",
        text=text,
        created_at=format_timestamp(created_at),
        rating=rating,
    )
    rest = (1 - confidence) / 2
    probabilities = {"negative": rest, "neutral": rest, "positive": rest, sentiment: confidence}
    prediction = Prediction(
        label=sentiment,  # type: ignore[arg-type]
        confidence=confidence,
        probabilities=probabilities,
        tokens=tokens,
        unknown_tokens=unknown_tokens,
    )
    review = ValidReview(
        event=event, clean_text=clean_text(text), created_at=created_at.astimezone(UTC)
    )
    return build_review_row(
        ClassifiedReview.of(
            review,
            ReviewTerms(keywords=[], complaint_keywords=[]),
            prediction,
            model_version=model_version,
            processed_at=created_at,
        )
    )
