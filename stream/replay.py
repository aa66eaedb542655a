"""Replay source for ``reviewpulse produce``: corpus rows or JSONL lines in, Kafka messages out.

Pure apart from reading the input file. Ids, products, users, ratings and ``created_at`` are
generated from a seed; ``malformed_share`` swaps that share of events for bad ones, cycling
through every reason code, and each event says what the worker should do with it
(``expected_reason`` is ``None`` for a valid review), so tests and demos can check the outcome.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

from model.corpus import read_records
from model.labels import NEGATIVE, POSITIVE, RATINGS
from stream.events import SCHEMA_VERSION, ReasonCode, format_timestamp

# Every reason the worker dead-letters for by content, so a replay exercises each one.
# ``poison`` is not about content: a message gets it by crashing the worker repeatedly.
MALFORMED_KINDS: tuple[str, ...] = tuple(k for k in get_args(ReasonCode) if k != "poison")


@dataclass(frozen=True)
class SourceReview:
    text: str
    category: str = "未分类"
    label: int | None = None  # corpus label: 1 positive, 0 negative
    event: dict[str, Any] | None = None  # a complete review.created payload from JSONL


@dataclass(frozen=True)
class ReplayEvent:
    key: bytes | None
    value: bytes
    review_id: str | None
    product_id: str | None
    category: str | None
    created_at: str | None
    expected_reason: str | None  # None: a valid review

    @property
    def value_sha256(self) -> str:
        return hashlib.sha256(self.value).hexdigest()

    def manifest_line(self) -> str:
        return json.dumps(
            {
                "review_id": self.review_id,
                "product_id": self.product_id,
                "category": self.category,
                "created_at": self.created_at,
                "expected_reason": self.expected_reason,
                "value_sha256": self.value_sha256,
            },
            ensure_ascii=False,
        )


def read_corpus(path: Path) -> list[SourceReview]:
    """Non-empty reviews of ``online_shopping_10_cats`` (.zip or .csv: cat,label,review)."""
    reviews = []
    for row in read_records(path):
        review = (row.get("review") or "").replace("\ufeff", "").strip()
        if review:
            reviews.append(SourceReview(review, row["cat"].strip(), int(row["label"])))
    return reviews


def read_jsonl(path: Path) -> list[SourceReview]:
    """JSONL lines: full ``review.created`` payloads (sent as they are) or
    ``{"text": ..., "category": ..., "label": ...}`` (the rest is generated)."""
    reviews = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        data = json.loads(line)
        if not isinstance(data, dict) or "text" not in data:
            raise ValueError(f"{path}:{number}: expected an object with a 'text' field")
        if "schema_version" in data:
            reviews.append(SourceReview(str(data["text"]), str(data.get("category")), event=data))
        else:
            category = str(data.get("category") or "未分类")
            reviews.append(SourceReview(str(data["text"]), category, data.get("label")))
    return reviews


class EventFactory:
    """Deterministic (per seed) generator of replay events."""

    def __init__(
        self,
        *,
        seed: int = 0,
        id_prefix: str = "r",
        products_per_category: int = 5,
        users: int = 10_000,
        malformed_share: float = 0.0,
        max_text_chars: int = 5000,
        max_event_bytes: int = 262_144,
    ) -> None:
        if not 0 <= malformed_share <= 1:
            raise ValueError("malformed_share must be within 0..1")
        self.rng = random.Random(seed)
        self.id_prefix = id_prefix
        self.products_per_category = products_per_category
        self.users = users
        self.malformed_share = malformed_share
        self.max_text_chars = max_text_chars
        self.max_event_bytes = max_event_bytes
        self.categories: dict[str, int] = {}
        self.count = 0
        self.malformed = 0

    def product_for(self, category: str) -> str:
        index = self.categories.setdefault(category, len(self.categories))
        return f"p{index:02d}-{self.rng.randrange(self.products_per_category):03d}"

    def valid_payload(self, source: SourceReview, created_at: datetime) -> dict[str, Any]:
        if source.event is not None:
            return dict(source.event)
        rating: int | None = None
        if source.label is not None and self.rng.random() < 0.7:
            rating = self.rng.choice(RATINGS[POSITIVE] if source.label == 1 else RATINGS[NEGATIVE])
        payload: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "review_id": f"{self.id_prefix}-{self.count:08d}",
            "product_id": self.product_for(source.category),
            "category": source.category,
            "user_id": f"u-{self.rng.randrange(self.users):06d}",
            "text": source.text,
            "created_at": format_timestamp(created_at),
        }
        if rating is not None:
            payload["rating"] = rating
        return payload

    def make(self, source: SourceReview, created_at: datetime) -> ReplayEvent:
        payload = self.valid_payload(source, created_at)
        self.count += 1
        if self.malformed_share and self.rng.random() < self.malformed_share:
            kind = MALFORMED_KINDS[self.malformed % len(MALFORMED_KINDS)]
            self.malformed += 1
            return self._malformed(kind, payload)
        return _event(payload, None)

    def _malformed(self, kind: str, payload: dict[str, Any]) -> ReplayEvent:
        bad = dict(payload)
        if kind == "malformed_json":
            raw = json.dumps(bad, ensure_ascii=False).encode()[:-7]
            return _raw_event(raw, bad, kind)
        if kind == "not_an_object":
            return _raw_event(json.dumps([bad["review_id"], bad["text"]]).encode(), bad, kind)
        if kind == "invalid_unicode":  # a lone surrogate, escaped: valid JSON, not text
            bad["user_id"] = "u\ud800"
            return _raw_event(json.dumps(bad, ensure_ascii=True).encode(), bad, kind)
        if kind == "event_too_large":
            bad["text"] = "长" * (self.max_event_bytes // 3 + 1)
            return _event(bad, kind)
        changes: dict[str, Any] = {
            "wrong_type": {"rating": "five"},
            "empty_field": {"category": ""},
            "field_too_long": {"user_id": "u" * 200},
            "unknown_schema_version": {"schema_version": SCHEMA_VERSION + 98},
            "bad_timestamp": {"created_at": "27/11/2026 05:00"},
            "empty_text": {"text": " \u200b "},
            "text_too_long": {"text": "质量很好速度快" * (self.max_text_chars // 7 + 1)},
            "rating_out_of_range": {"rating": self.rng.choice((0, 6, 10))},
        }.get(kind, {})
        if kind == "missing_field":
            del bad["text"]
        bad.update(changes)
        return _event(bad, kind)


def _event(payload: dict[str, Any], expected_reason: str | None) -> ReplayEvent:
    raw = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return _raw_event(raw, payload, expected_reason)


def _raw_event(raw: bytes, payload: dict[str, Any], expected_reason: str | None) -> ReplayEvent:
    product = payload.get("product_id")
    product_id = product if isinstance(product, str) else None
    return ReplayEvent(
        key=product_id.encode() if product_id else None,
        value=raw,
        review_id=payload.get("review_id") if isinstance(payload.get("review_id"), str) else None,
        product_id=product_id,
        category=payload.get("category") if isinstance(payload.get("category"), str) else None,
        created_at=payload.get("created_at") if expected_reason is None else None,
        expected_reason=expected_reason,
    )


def cycle_sources(sources: list[SourceReview], seed: int) -> Iterator[SourceReview]:
    """Shuffled sources, reshuffled and repeated as long as the caller wants more."""
    rng = random.Random(seed)
    order = list(sources)
    while True:
        rng.shuffle(order)
        yield from order
