"""The sentiment labels, once: the served triple, the corpus pair, and star ratings.

Every area names labels through this module: the predictor serves :data:`SENTIMENTS` in this
order, training labels rated reviews with :func:`label_from_rating`, and the stream's events
and rows carry the same three names.
"""

from __future__ import annotations

from typing import Any, Literal

Sentiment = Literal["negative", "neutral", "positive"]

NEGATIVE: Sentiment = "negative"
NEUTRAL: Sentiment = "neutral"
POSITIVE: Sentiment = "positive"

SENTIMENTS: tuple[Sentiment, ...] = (NEGATIVE, NEUTRAL, POSITIVE)
"""The served labels, in the order of every probability row."""

BINARY_SENTIMENTS: tuple[Sentiment, ...] = (NEGATIVE, POSITIVE)
"""The labels of a two-class model (the shipped corpus has no neutral class)."""

RATINGS: dict[Sentiment, tuple[int, ...]] = {
    NEGATIVE: (1, 2),
    NEUTRAL: (3,),
    POSITIVE: (4, 5),
}
"""The star ratings (1-5) that mean each label."""

_LABEL_OF_RATING = {rating: label for label, ratings in RATINGS.items() for rating in ratings}


def label_from_rating(rating: Any) -> Sentiment:
    """Star rating 1-5 to a label: >= 4 positive, 3 neutral, <= 2 negative."""
    if isinstance(rating, bool):
        raise ValueError(f"rating must be a number 1-5, got {rating!r}")
    try:
        value = float(rating)
    except (TypeError, ValueError):
        raise ValueError(f"rating must be a number 1-5, got {rating!r}") from None
    if value not in _LABEL_OF_RATING:
        raise ValueError(f"rating must be an integer 1-5, got {rating!r}")
    return _LABEL_OF_RATING[int(value)]
