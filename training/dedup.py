"""Cleaning and deduplication: empty reviews, exact and near-duplicates.

Two reviews are *near-duplicates* when they are equal after dropping everything but letters,
digits and CJK characters and lowercasing (``near_key``): that catches copies that differ in
punctuation, spacing, emoticons or repeated characters. Such a group keeps one review, labelled
by majority; groups whose labels tie are dropped as contradictory. A second, fuzzier pass
(MinHash over character 3-grams, :func:`near_duplicate_pairs`) finds reviews that share most of
their text, and the split removes those from validation and test when they resemble training.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from model.text import clean_text
from training.data import Review

_NOT_CONTENT = re.compile(r"[^0-9a-z\u3400-\u9fff\uf900-\ufaff]+")
_REPEATS = re.compile(r"(.)\1+")


def near_key(text: str) -> str:
    """Normalised text used to group near-duplicates (content characters only)."""
    return _REPEATS.sub(r"\1", _NOT_CONTENT.sub("", text.lower()))


@dataclass(frozen=True)
class CleaningStats:
    rows_in: int
    empty: int
    exact_duplicates: int  # identical after cleaning (a subset of ``duplicates``)
    duplicates: int  # exact and near-duplicates collapsed into the kept member
    contradictory: int  # members of near-duplicate groups with tied labels, all dropped
    rows_out: int


def clean_and_dedup(reviews: Sequence[Review]) -> tuple[list[Review], CleaningStats]:
    """Clean every text, drop empty ones, and collapse exact and near-duplicates.

    The kept member of a group is its first occurrence, so the result is deterministic for a
    given input order; labels come from the group's majority."""
    groups: dict[str, list[Review]] = defaultdict(list)
    order: list[str] = []
    empty = 0
    exact_seen: set[str] = set()
    exact_duplicates = 0
    for review in reviews:
        text = clean_text(review.text)
        key = near_key(text)
        if not key:
            empty += 1
            continue
        if text in exact_seen:
            exact_duplicates += 1
        exact_seen.add(text)
        if key not in groups:
            order.append(key)
        groups[key].append(replace(review, text=text))
    kept: list[Review] = []
    contradictory = 0
    for key in order:
        members = groups[key]
        votes = Counter(m.label for m in members).most_common()
        if len(votes) > 1 and votes[0][1] == votes[1][1]:
            contradictory += len(members)
            continue
        kept.append(replace(members[0], label=votes[0][0]))
    duplicates = len(reviews) - empty - contradictory - len(kept)
    stats = CleaningStats(
        rows_in=len(reviews),
        empty=empty,
        exact_duplicates=exact_duplicates,
        duplicates=duplicates,
        contradictory=contradictory,
        rows_out=len(kept),
    )
    return kept, stats


# --- fuzzy near-duplicates (MinHash LSH) ----------------------------------------------------

_PRIME = (1 << 61) - 1
_NUM_PERM = 32
_BANDS = 8  # 8 bands of 4 rows: pairs with Jaccard 0.8 collide with probability ~0.97


def _shingles(text: str, n: int = 3) -> np.ndarray:
    key = near_key(text)
    grams = {key[i : i + n] for i in range(max(1, len(key) - n + 1))}
    return np.fromiter(
        (zlib.crc32(g.encode("utf-8")) for g in grams), dtype=np.uint64, count=len(grams)
    )


def _signatures(texts: Sequence[str]) -> tuple[np.ndarray, list[set[int]]]:
    rng = np.random.default_rng(20240601)
    a = rng.integers(1, 1 << 31, size=_NUM_PERM, dtype=np.uint64)
    b = rng.integers(0, 1 << 31, size=_NUM_PERM, dtype=np.uint64)
    signatures = np.empty((len(texts), _NUM_PERM), dtype=np.uint64)
    sets: list[set[int]] = []
    for row, text in enumerate(texts):
        shingles = _shingles(text)
        sets.append(set(shingles.tolist()))
        signatures[row] = ((np.outer(shingles, a) + b) % _PRIME).min(axis=0)
    return signatures, sets


def near_duplicate_pairs(
    reference: Sequence[str], candidates: Sequence[str], *, threshold: float = 0.8
) -> dict[int, int]:
    """For each candidate text that has a near-duplicate in ``reference`` (character 3-gram
    Jaccard >= threshold), map its index to the index of one such reference text."""
    if not reference or not candidates:
        return {}
    ref_sig, ref_sets = _signatures(reference)
    cand_sig, cand_sets = _signatures(candidates)
    rows = _NUM_PERM // _BANDS
    found: dict[int, int] = {}
    for band in range(_BANDS):
        cols = slice(band * rows, (band + 1) * rows)
        buckets: dict[bytes, list[int]] = defaultdict(list)
        for index, signature in enumerate(ref_sig[:, cols]):
            buckets[signature.tobytes()].append(index)
        for index, signature in enumerate(cand_sig[:, cols]):
            if index in found:
                continue
            for ref_index in buckets.get(signature.tobytes(), ()):
                a, b = cand_sets[index], ref_sets[ref_index]
                if len(a & b) / max(1, len(a | b)) >= threshold:
                    found[index] = ref_index
                    break
    return found
