"""Synthetic ``reviews`` rows (as mappings) for the sink tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from model.labels import SENTIMENTS

START = datetime(2026, 3, 31, 23, 58, 0, tzinfo=UTC)  # spans a month boundary (partitions)


def make_rows(count: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    words = ["质量", "物流", "客服", "包装", "价格", "漏水", "破损"]
    rows = []
    for i in range(count):
        sentiment = rng.choice(SENTIMENTS)
        complaints = rng.sample(["质量差", "漏水", "假货"], rng.randint(0, 2))
        rows.append(
            {
                "review_id": f"r-{i:05d}",
                "product_id": f"p{rng.randint(1, 4)}",
                "category": rng.choice(["家电", "服装"]),
                "user_id": f"u{rng.randint(1, 50)}",
                "rating": rng.choice([None, 1, 2, 3, 4, 5]),
                "text": f"评论 {i} 'quote' \"dq\" \\ back;slash\n换行",
                "sentiment": sentiment,
                "confidence": rng.choice([0.5, 0.75, 0.875]),
                "prob_negative": 0.25,
                "prob_neutral": 0.25,
                "prob_positive": 0.5,
                "keywords": rng.sample(words, rng.randint(0, 3)),
                "complaint_keywords": complaints,
                "model_version": "test-1",
                "created_at": START + timedelta(seconds=rng.randint(0, 299)),
                "processed_at": START + timedelta(minutes=10),
                "tokens": 10 + i % 50,
                "unknown_tokens": i % 3,
            }
        )
    return rows
