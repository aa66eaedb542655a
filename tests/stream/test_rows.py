"""The row and the sentiment event of one classified review: the row has the reviews
columns, the event matches its schema, and both carry the same prediction."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pytest

import schemas
from stream.events import to_json_bytes
from stream.keywords import ReviewTerms
from stream.rows import ClassifiedReview, build_review_row, build_sentiment_event
from stream.sink.store import REVIEW_COLUMNS
from stream.validation import ValidReview, parse_review


@dataclass(frozen=True)
class FakePrediction:  # the model's output shape; the model itself is tested in tests/model
    label: str
    confidence: float
    probabilities: dict[str, float]


def review(rating: int | None = 2) -> ValidReview:
    raw = json.dumps(
        {
            "schema_version": 1,
            "review_id": "r-9",
            "product_id": "p-3",
            "category": "热水器",
            "user_id": "u-7",
            "rating": rating,
            "text": "漏水了，退货！",
            "created_at": "2026-11-27T13:01:12.654+08:00",
        }
    ).encode()
    result = parse_review(raw, max_text_chars=100, max_event_bytes=4096)
    assert isinstance(result, ValidReview)
    return result


TERMS = ReviewTerms(keywords=["漏水", "退货"], complaint_keywords=["漏水"])
NEGATIVE = FakePrediction("negative", 0.9, {"negative": 0.9, "neutral": 0.06, "positive": 0.04})
PROCESSED = datetime(2026, 11, 27, 5, 2, 0, 999_000, tzinfo=UTC)


def classified(rating: int | None = 2, prediction: FakePrediction = NEGATIVE) -> ClassifiedReview:
    return ClassifiedReview.of(
        review(rating), TERMS, prediction, model_version="m1", processed_at=PROCESSED
    )


def test_row_has_exactly_the_reviews_columns() -> None:
    row = asdict(build_review_row(classified()))
    assert list(row) == list(REVIEW_COLUMNS)  # the sink owns the columns
    assert row["text"] == "漏水了,退货!"
    assert row["sentiment"] == "negative"
    assert (row["prob_negative"], row["prob_neutral"], row["prob_positive"]) == (0.9, 0.06, 0.04)
    assert row["created_at"] == datetime(2026, 11, 27, 5, 1, 12, tzinfo=UTC)
    assert row["processed_at"] == datetime(2026, 11, 27, 5, 2, 0, tzinfo=UTC)
    assert row["rating"] == 2
    assert row["keywords"] == ["漏水", "退货"] and row["complaint_keywords"] == ["漏水"]


def test_sentiment_event_validates_and_agrees_with_the_row() -> None:
    for rating in (2, None):
        one = classified(rating)
        payload = json.loads(to_json_bytes(build_sentiment_event(one)))
        errors = [e.message for e in schemas.validator("review_sentiment", 1).iter_errors(payload)]
        assert errors == []
        assert payload["created_at"] == "2026-11-27T05:01:12Z"
        assert payload["rating"] == rating
        assert payload["probabilities"] == {"negative": 0.9, "neutral": 0.06, "positive": 0.04}
        row = build_review_row(one)
        assert (payload["review_id"], payload["sentiment"], payload["model_version"]) == (
            row.review_id,
            row.sentiment,
            row.model_version,
        )


def test_unknown_model_label_is_rejected() -> None:
    odd = FakePrediction("angry", 1.0, {"angry": 1.0})
    with pytest.raises(ValueError, match="angry"):
        classified(prediction=odd)
