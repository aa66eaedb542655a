"""Hand-built review rows for the reputation tests, made by the stream's own transforms.

Texts are cleaned with ``model.text.clean_text`` and segmented by ``stream.keywords``
(so complaint keywords come from the real lexicon); rows are ``stream.rows.ReviewRow``s
from ``stream.rows.build_review_row``. The sentiment is the scenario's input, given as the
model's prediction, because the model is not what these tests are about.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from model.text import clean_text
from stream.events import ReviewCreated, format_timestamp
from stream.keywords import Keywords, ReviewTerms
from stream.rows import ClassifiedReview, ReviewRow, build_review_row
from stream.validation import ValidReview

POSITIVE_TEXT = "东西很好用，物流也快，非常满意，推荐购买"
NEUTRAL_TEXT = "东西收到了，还行吧，和别家差不多"
NEGATIVE_TEXT = "不太喜欢，感觉一般，有点失望"
COMPLAINT_TEXT = "用了两天就漏水了，质量太差，申请退货客服也不理"


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    probabilities: dict[str, float] = field(default_factory=dict)


def prediction(label: str) -> Prediction:
    probabilities = {"negative": 0.05, "neutral": 0.05, "positive": 0.05}
    probabilities[label] = 0.9
    return Prediction(label=label, confidence=0.9, probabilities=probabilities)


@cache
def keywords() -> Keywords:
    return Keywords.load()


@cache
def terms(cleaned: str) -> ReviewTerms:
    """jieba once per distinct text (the scenarios repeat a few texts many times)."""
    return keywords().extract(cleaned)


def review_row(
    review_id: str,
    product_id: str,
    category: str,
    sentiment: str,
    created_at: datetime,
    *,
    text: str | None = None,
    rating: int | None = None,
) -> ReviewRow:
    """One ``reviews`` row as the worker would write it."""
    if text is None:
        text = {"positive": POSITIVE_TEXT, "neutral": NEUTRAL_TEXT}.get(sentiment, NEGATIVE_TEXT)
    event = ReviewCreated(
        schema_version=1,
        review_id=review_id,
        product_id=product_id,
        category=category,
        user_id=f"u-{review_id}",
        text=text,
        created_at=format_timestamp(created_at),
        rating=rating,
    )
    cleaned = clean_text(text)
    review = ValidReview(event=event, clean_text=cleaned, created_at=created_at.astimezone(UTC))
    return build_review_row(
        ClassifiedReview.of(
            review,
            terms(cleaned),
            prediction(sentiment),
            model_version="test",
            processed_at=created_at,
        )
    )


def spread(start: datetime, end: datetime, n: int) -> Iterator[datetime]:
    """``n`` timestamps evenly inside ``[start, end)``."""
    step = (end - start) / n
    for i in range(n):
        yield start + step * i + step / 2


CATEGORIES = ("热水器", "手机", "衣服", "书籍", "洗发水")


@dataclass
class Scenario:
    """50 products with steady mixed traffic over a 24 h baseline and the last hour."""

    now: datetime
    products: int = 50
    baseline_reviews: int = 40  # per product, over the 24 h before the window
    window_reviews: int = 30  # per product, in the last hour
    rows: list[ReviewRow] = field(default_factory=list)

    @staticmethod
    def product_id(i: int) -> str:
        return f"P{i:03d}"

    @staticmethod
    def category(i: int) -> str:
        return CATEGORIES[i % len(CATEGORIES)]

    def _steady(self, i: int, times: Iterator[datetime], n: int, tag: str) -> None:
        # 20% negative (a quarter of them with complaint words), 20% neutral, 60% positive.
        for k, moment in enumerate(times):
            slot = k % 10
            if slot < 2:
                sentiment = "negative"
                text = COMPLAINT_TEXT if k % 20 == 0 else NEGATIVE_TEXT
            elif slot < 4:
                sentiment, text = "neutral", NEUTRAL_TEXT
            else:
                sentiment, text = "positive", POSITIVE_TEXT
            self.rows.append(
                review_row(
                    f"{tag}-{self.product_id(i)}-{k}",
                    self.product_id(i),
                    self.category(i),
                    sentiment,
                    moment,
                    text=text,
                )
            )
        assert n >= 0

    def steady_history(self) -> list[ReviewRow]:
        """The baseline: 24 h before the last hour, steady for every product."""
        start, end = self.now - timedelta(hours=24), self.now - timedelta(minutes=70)
        rows_before = len(self.rows)
        for i in range(self.products):
            self._steady(i, spread(start, end, self.baseline_reviews), self.baseline_reviews, "b")
        return self.rows[rows_before:]

    def steady_window(self, skip: set[int] | frozenset[int] = frozenset()) -> list[ReviewRow]:
        """The last hour, steady, for every product except ``skip``."""
        start, end = self.now - timedelta(minutes=50), self.now - timedelta(minutes=2)
        rows_before = len(self.rows)
        for i in range(self.products):
            if i not in skip:
                self._steady(i, spread(start, end, self.window_reviews), self.window_reviews, "w")
        return self.rows[rows_before:]

    def turned_negative(self, i: int, n: int = 30, negative_share: float = 0.8) -> list[ReviewRow]:
        """Product ``i`` in the last hour: mostly negative, with complaint words."""
        start, end = self.now - timedelta(minutes=20), self.now
        negatives = round(n * negative_share)
        rows = [
            review_row(
                f"t-{self.product_id(i)}-{k}",
                self.product_id(i),
                self.category(i),
                "negative" if k < negatives else "positive",
                moment,
                text=COMPLAINT_TEXT if k < negatives else POSITIVE_TEXT,
            )
            for k, moment in enumerate(spread(start, end, n))
        ]
        self.rows.extend(rows)
        return rows

    def newcomer(self, product_id: str = "NEW-1", category: str = "手机") -> list[ReviewRow]:
        """A product with no history and 3 negative complaint reviews just now."""
        rows = [
            review_row(
                f"n-{product_id}-{k}",
                product_id,
                category,
                "negative",
                self.now - timedelta(minutes=5 - k),
                text=COMPLAINT_TEXT,
            )
            for k in range(3)
        ]
        self.rows.extend(rows)
        return rows
