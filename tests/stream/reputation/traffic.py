"""Seeded, irregular review traffic for the alert tests, built by the stream's own transforms.

Unlike ``scenario.Scenario`` (evenly spaced, fixed order, for exact report figures), reviews
arrive at random moments (Poisson arrivals) with random sentiments, as they do in a shop.
Rows are ``stream.rows.ReviewRow``s from ``scenario.review_row``: texts are cleaned and
segmented for real, so complaint keywords come from the curated lexicon. The sentiment is
given as the model's prediction; the tests through a real worker use ``corpus_events``
instead, which leaves the sentiment to the served model.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stream.rows import ReviewRow
from tests.stream.reputation.scenario import review_row

CATEGORIES = ("热水器", "手机", "衣服", "书籍", "洗发水")
POSITIVE_TEXTS = (
    "东西很好用，物流也快，非常满意，推荐购买",
    "质量不错，包装完好，和描述一致",
    "第二次购买了，一如既往的好，家人都喜欢",
    "性价比很高，客服回复及时，好评",
)
NEUTRAL_TEXTS = ("东西收到了，还行吧，和别家差不多", "一般般，价格还可以")
NEGATIVE_TEXTS = (
    "不太喜欢，感觉一般，有点失望",
    "颜色和图片差别有点大，不太满意",
    "用起来不顺手，下次不会再买了",
)
COMPLAINT_TEXTS = (
    "用了两天就漏水了，质量太差，申请退货客服也不理",
    "收到就坏了，屏幕有裂痕，要求退货",
    "假货，和专柜的完全不一样，欺骗消费者",
    "发货太慢了，等了一周才到，包装破损",
)


def product_id(i: int) -> str:
    return f"P{i:03d}"


def category(i: int) -> str:
    return CATEGORIES[i % len(CATEGORIES)]


@dataclass
class Traffic:
    """Accumulates rows; every method also returns the rows it made."""

    seed: int = 0
    rows: list[ReviewRow] = field(default_factory=list)
    _count: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _times(self, start: datetime, end: datetime, per_minute: float) -> list[datetime]:
        moments, t = [], start
        while True:
            t += timedelta(minutes=self.rng.expovariate(per_minute))
            if t >= end:
                return moments
            moments.append(t)

    def _row(
        self, product: str, cat: str, sentiment: str, moment: datetime, text: str
    ) -> ReviewRow:
        self._count += 1
        row = review_row(f"tr{self.seed}-{self._count}", product, cat, sentiment, moment, text=text)
        self.rows.append(row)
        return row

    def reviews(
        self,
        product: str,
        cat: str,
        start: datetime,
        end: datetime,
        *,
        per_minute: float = 6.0,
        negative_share: float = 0.15,
        complaint_share: float = 0.2,
    ) -> list[ReviewRow]:
        """One product's reviews over ``[start, end)``: ``negative_share`` of them negative
        (``complaint_share`` of those with complaint words), 10% neutral, the rest
        positive."""
        made = []
        for moment in self._times(start, end, per_minute):
            roll = self.rng.random()
            if roll < negative_share:
                texts = COMPLAINT_TEXTS if self.rng.random() < complaint_share else NEGATIVE_TEXTS
                sentiment = "negative"
            elif roll < negative_share + 0.1:
                sentiment, texts = "neutral", NEUTRAL_TEXTS
            else:
                sentiment, texts = "positive", POSITIVE_TEXTS
            made.append(self._row(product, cat, sentiment, moment, self.rng.choice(texts)))
        return made

    def shop(
        self,
        products: Iterable[int],
        start: datetime,
        end: datetime,
        **kwargs: float,
    ) -> list[ReviewRow]:
        """Steady traffic for ``products`` (indexes; ids ``P000``..., five categories)."""
        made = []
        for i in products:
            made += self.reviews(product_id(i), category(i), start, end, **kwargs)
        return made

    def burst(
        self, product: str, cat: str, moments: Iterable[datetime], sentiment: str = "negative"
    ) -> list[ReviewRow]:
        """One review at each of ``moments`` (complaint texts when negative)."""
        texts = COMPLAINT_TEXTS if sentiment == "negative" else POSITIVE_TEXTS
        return [self._row(product, cat, sentiment, m, self.rng.choice(texts)) for m in moments]
