"""The complaint lexicon per category: the curated list plus words learned from history. Pure.

The curated lexicon (``stream/resources/complaint_lexicon.txt``) is matched at ingest, with
negation handling, into ``complaint_keywords``. Next to it, each category learns the review
keywords (jieba, ``reviews.keywords``) that mark negative reviews in that category: a keyword
qualifies when at least ``min_reviews`` negative reviews of the category carry it and its
negative-review lift is at least ``min_lift``. The lift is how many times more often the word
appears in the category's negative reviews than in its other reviews,
``((neg + 1) / (N_neg + 1)) / ((other + 1) / (N_other + 1))`` (add-one smoothed, so a rare
word cannot qualify on luck); unlike ``P(negative | word) / P(negative)`` it is not capped by
a category's negative share. A word that qualifies in most categories (at least
:data:`GENERIC_SHARE` of those that learned any word, when three or more did) is general
negative sentiment ("失望", "太差"), not a complaint about something, and is left out: without
that, "complaint" would come to mean "negative" and the complaint rule would only echo the
negative-share rule.
The engine relearns it every ``alert_lexicon_refresh_minutes``
from the last ``alert_lexicon_days`` of reviews; ``queries.fetch_keyword_stats`` reads the
counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Most learned words kept per category (highest lift first).
MAX_WORDS = 30
# A word that qualifies in at least this share of the categories is general sentiment.
GENERIC_SHARE = 0.5


@dataclass(frozen=True)
class KeywordStat:
    """Reviews of one category carrying one keyword: how many, and how many negative."""

    category: str
    keyword: str
    negative: int
    total: int


@dataclass(frozen=True)
class LearnedWord:
    keyword: str
    negative: int
    total: int
    lift: float


@dataclass(frozen=True)
class Lexicon:
    """What counts as a complaint: curated terms (matched at ingest) and, per category,
    learned keywords."""

    learned: Mapping[str, tuple[LearnedWord, ...]] = field(default_factory=dict)

    def words(self, category: str) -> tuple[str, ...]:
        return tuple(word.keyword for word in self.learned.get(category, ()))

    def pairs(self) -> list[tuple[str, str]]:
        """(category, keyword) of every learned word, sorted."""
        return sorted((c, w.keyword) for c, words in self.learned.items() for w in words)

    @property
    def size(self) -> int:
        return sum(len(words) for words in self.learned.values())


def keyword_lift(negative: int, total: int, category_negative: int, category_total: int) -> float:
    """How many times more often a word is in negative reviews than in the others."""
    in_negative = (negative + 1) / (category_negative + 1)
    in_other = (total - negative + 1) / (category_total - category_negative + 1)
    return in_negative / in_other


def learn_lexicon(
    stats: Iterable[KeywordStat],
    category_totals: Mapping[str, tuple[int, int]],
    *,
    exclude: frozenset[str],
    min_reviews: int,
    min_lift: float,
    max_words: int = MAX_WORDS,
) -> Lexicon:
    """Learn each category's complaint keywords from ``stats`` and each category's
    (negative, all) review counts (``category_totals``). ``exclude``: words never learned
    (the curated terms and their variants, which ingest matches with negation handling)."""
    chosen: dict[str, list[LearnedWord]] = {}
    for stat in stats:
        negative, total = category_totals.get(stat.category, (0, 0))
        if stat.keyword in exclude or stat.negative < min_reviews or not 0 < negative < total:
            continue
        lift = keyword_lift(stat.negative, stat.total, negative, total)
        if lift >= min_lift:
            word = LearnedWord(stat.keyword, stat.negative, stat.total, round(lift, 3))
            chosen.setdefault(stat.category, []).append(word)
    categories = len(chosen)  # the categories with enough data to learn from
    spread: dict[str, int] = {}
    for words in chosen.values():
        for word in words:
            spread[word.keyword] = spread.get(word.keyword, 0) + 1
    generic = {
        word
        for word, count in spread.items()
        if categories >= 3 and count >= GENERIC_SHARE * categories
    }
    return Lexicon(
        {
            category: tuple(
                sorted(
                    (w for w in words if w.keyword not in generic),
                    key=lambda w: (-w.lift, -w.negative, w.keyword),
                )[:max_words]
            )
            for category, words in sorted(chosen.items())
            if any(w.keyword not in generic for w in words)
        }
    )
