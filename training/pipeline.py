"""The training pipeline's steps, shared by the CLI commands and the tests."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.card import DataCard, DataSource
from model.labels import BINARY_SENTIMENTS, NEUTRAL, SENTIMENTS
from model.paths import file_sha256, portable_path
from training.data import Review, load_file
from training.dedup import CleaningStats, clean_and_dedup, near_key
from training.split import Split, stratified_split


@dataclass
class PreparedData:
    split: Split
    cleaning: CleaningStats
    sources: list[DataSource] = field(default_factory=list)

    @property
    def labels(self) -> tuple[str, ...]:
        """Model labels: three when the training data has a neutral class, else two."""
        if any(r.label == NEUTRAL for r in self.split.train):
            return SENTIMENTS
        return BINARY_SENTIMENTS

    def describe(self) -> DataCard:
        """Sources, cleaning and split, as model cards and reports record them."""
        return DataCard(
            sources=tuple(self.sources),
            cleaning=asdict(self.cleaning),
            split=self.split.summary(),
        )


def stratified_sample(reviews: Sequence[Review], size: int) -> list[Review]:
    """A deterministic sample of about ``size`` reviews, proportional per (category, label)."""
    if size >= len(reviews):
        return list(reviews)
    strata: dict[tuple[str, str], list[Review]] = defaultdict(list)
    for review in reviews:
        strata[(review.category, review.label)].append(review)
    sample: list[Review] = []
    for key in sorted(strata):
        members = sorted(
            strata[key], key=lambda r: hashlib.sha1(near_key(r.text).encode()).hexdigest()
        )
        sample.extend(members[: max(1, round(len(members) * size / len(reviews)))])
    return sample


def prepare_data(
    paths: Sequence[Path],
    *,
    extra: Sequence[Review] = (),
    sample: int | None = None,
    validation: float = 0.1,
    test: float = 0.1,
) -> PreparedData:
    """Load, clean, deduplicate and split. ``extra`` holds reviews from other sources
    (ClickHouse)."""
    reviews: list[Review] = []
    sources: list[DataSource] = []
    for path in paths:
        loaded, skipped = load_file(Path(path))
        reviews.extend(loaded)
        sha256 = file_sha256(path)
        sources.append(
            DataSource(
                path=portable_path(path, sha256=sha256),
                sha256=sha256,
                rows=len(loaded),
                skipped=skipped,
            )
        )
    if extra:
        reviews.extend(extra)
        sources.append(DataSource(path="clickhouse:reviews", rows=len(extra)))
    kept, stats = clean_and_dedup(reviews)
    if sample:
        kept = stratified_sample(kept, sample)
    split = stratified_split(kept, validation=validation, test=test)
    return PreparedData(split=split, cleaning=stats, sources=sources)


def label_ids(reviews: Sequence[Review], labels: Sequence[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(labels)}
    return np.array([index[r.label] for r in reviews], dtype=np.int64)


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids with special tokens, truncated to ``max_length`` (``tokenizers.Tokenizer``)."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return [e.ids for e in tokenizer.encode_batch(list(texts))]
