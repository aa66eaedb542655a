"""Deterministic, stratified train/validation/test split, recorded by hash.

Within each (category, label) stratum, reviews are ordered by the md5 of their normalised
text and cut at the requested fractions. The result depends only on the set of reviews, not
on their order or on any random state, so the same data always gives the same split. After
the cut, validation and test reviews that are fuzzy near-duplicates of a training review (or
test reviews of a validation review) are dropped so no split leaks into another.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from training.data import Review
from training.dedup import near_duplicate_pairs, near_key


@dataclass(frozen=True)
class Split:
    train: list[Review]
    validation: list[Review]
    test: list[Review]
    leaks_dropped: dict[str, int] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """Hash naming the exact split: every review's part, label, category and text."""
        digest = hashlib.sha256()
        for part, reviews in (("train", self.train), ("validation", self.validation)):
            for line in sorted(_line(r) for r in reviews):
                digest.update(f"{part}\t{line}\n".encode())
        for line in sorted(_line(r) for r in self.test):
            digest.update(f"test\t{line}\n".encode())
        return digest.hexdigest()

    def summary(self) -> dict:
        parts = {"train": self.train, "validation": self.validation, "test": self.test}
        return {
            "sha256": self.sha256,
            "sizes": {name: len(reviews) for name, reviews in parts.items()},
            "labels": {
                name: dict(sorted(Counter(r.label for r in reviews).items()))
                for name, reviews in parts.items()
            },
            "near_duplicate_leaks_dropped": dict(self.leaks_dropped),
            "method": "per (category, label): order by md5(normalised text), cut by fraction; "
            "fuzzy near-duplicates (char 3-gram Jaccard >= 0.8) of earlier parts dropped",
        }


def _line(review: Review) -> str:
    return f"{review.label}\t{review.category}\t{review.text}"


def _order_key(review: Review) -> str:
    return hashlib.md5(near_key(review.text).encode("utf-8")).hexdigest()


def stratified_split(
    reviews: Sequence[Review],
    *,
    validation: float = 0.1,
    test: float = 0.1,
    drop_near_duplicates: bool = True,
) -> Split:
    """Split deduplicated reviews; see the module docstring."""
    if not 0 <= validation < 1 or not 0 <= test < 1 or validation + test >= 1:
        raise ValueError("validation and test fractions must be in [0, 1) and sum below 1")
    strata: dict[tuple[str, str], list[Review]] = defaultdict(list)
    for review in reviews:
        strata[(review.category, review.label)].append(review)
    train: list[Review] = []
    val: list[Review] = []
    tst: list[Review] = []
    for key in sorted(strata):
        members = sorted(strata[key], key=lambda r: (_order_key(r), r.text))
        n = len(members)
        n_test = round(n * test)
        n_val = round(n * validation)
        tst.extend(members[:n_test])
        val.extend(members[n_test : n_test + n_val])
        train.extend(members[n_test + n_val :])
    leaks: dict[str, int] = {}
    if drop_near_duplicates:
        train_texts = [r.text for r in train]
        val_leaks = near_duplicate_pairs(train_texts, [r.text for r in val])
        val = [r for i, r in enumerate(val) if i not in val_leaks]
        test_leaks = near_duplicate_pairs(
            train_texts + [r.text for r in val], [r.text for r in tst]
        )
        tst = [r for i, r in enumerate(tst) if i not in test_leaks]
        leaks = {"validation": len(val_leaks), "test": len(test_leaks)}
    return Split(train=train, validation=val, test=tst, leaks_dropped=leaks)
