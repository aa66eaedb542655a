"""Segmentation, keywords and complaint terms for one cleaned review. Pure once loaded.

``Keywords.load()`` reads the stopword list and the curated complaint lexicon from
``stream/resources/`` and prepares a segmenter that knows every complaint variant as a word;
``Keywords.extract(text)`` then has no side effects.
Segmentation is jieba's precise mode with HMM, computed by ``stream.segmenter`` through
jieba-rs (jieba's tokens but for exact ties, measured there; HMM off would change 44% of the
corpus's keyword lists, so it stays on). jieba itself is only the reference the tests and
``bench.overhead`` compare against (:meth:`Keywords.reference_tokenizer`).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache, partial
from pathlib import Path

import jieba

from stream.segmenter import Segmenter

RESOURCES = Path(__file__).resolve().parent / "resources"
STOPWORDS_FILE = RESOURCES / "stopwords_zh.txt"
COMPLAINT_LEXICON_FILE = RESOURCES / "complaint_lexicon.txt"

# A complaint variant right after one of these is negated ("不漏水", "没有坏").
NEGATORS = ("没有", "不会", "不是", "并不", "不", "没", "无", "未", "别")
_WORDLIKE = re.compile(r"[\w\u4e00-\u9fff]")
_ONLY_DIGITS = re.compile(r"^[\d.,%]+$")
# jieba frequency of a complaint variant added as a word: high enough to win its route.
VARIANT_FREQ = 2000
CONTENT_WORD_CACHE = 1 << 16
"""Tokens whose content-word test a :class:`Keywords` remembers (a few MB at most)."""


@dataclass(frozen=True)
class ReviewTerms:
    """What a review's outputs keep of its segmentation. The tokens themselves stay where
    they were cut (:meth:`Keywords.tokens`): shipping them back from the keywords process
    cost about 20 µs a review, for nothing the stream writes."""

    keywords: list[str]
    complaint_keywords: list[str]


def read_word_list(path: Path) -> list[str]:
    """Non-empty, non-comment lines of a UTF-8 word list."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def read_complaint_lexicon(path: Path) -> dict[str, tuple[str, ...]]:
    """``canonical -> variants`` from lines ``canonical: variant variant ...``."""
    lexicon: dict[str, tuple[str, ...]] = {}
    for line in read_word_list(path):
        canonical, _, variants = line.partition(":")
        canonical = canonical.strip()
        if not canonical or not variants.strip():
            raise ValueError(f"{path}: bad lexicon line {line!r}")
        lexicon[canonical] = tuple(dict.fromkeys([canonical, *variants.split()]))
    return lexicon


def segment(text: str, tokenizer: jieba.Tokenizer | Segmenter) -> list[str]:
    """jieba tokens (precise mode, HMM on), whitespace tokens dropped."""
    tokens = (
        tokenizer.cut(text) if isinstance(tokenizer, Segmenter) else tokenizer.lcut(text, HMM=True)
    )
    return [token for token in tokens if token.strip()]


def is_content_word(token: str, stopwords: frozenset[str]) -> bool:
    """Two characters or more, not a stopword, a letter or digit in it, not only a number."""
    return (
        len(token) >= 2
        and token not in stopwords
        and _WORDLIKE.search(token) is not None
        and not _ONLY_DIGITS.match(token)
    )


def select_keywords(
    tokens: Iterable[str],
    stopwords: frozenset[str],
    limit: int,
    content_word: Callable[[str], bool] | None = None,
) -> list[str]:
    """Content words, most frequent first (ties: first seen), at most ``limit``.
    ``content_word``: :func:`is_content_word` for these stopwords, remembered or not."""
    test = content_word or partial(is_content_word, stopwords=stopwords)
    candidates = [token for token in tokens if test(token)]
    counts = Counter(candidates)  # keys in order of first appearance
    ranked = sorted(counts, key=lambda token: -counts[token])  # stable: ties keep that order
    return ranked[:limit]


def find_complaints(text: str, variants: Sequence[tuple[str, str]]) -> list[str]:
    """Canonical complaint terms in ``text``, in order of first appearance.

    ``variants`` are ``(variant, canonical)`` pairs, longest variant first, so "包装破损"
    claims its characters before "破损" can; matches right after a negator are skipped."""
    taken = [False] * len(text)
    found: dict[str, int] = {}
    for variant, canonical in variants:
        start = text.find(variant)
        while start != -1:
            end = start + len(variant)
            if not any(taken[start:end]):
                for i in range(start, end):
                    taken[i] = True
                if not _negated(text, start, variant):
                    found[canonical] = min(found.get(canonical, start), start)
            start = text.find(variant, start + 1)
    return sorted(found, key=found.__getitem__)


def _negated(text: str, start: int, variant: str) -> bool:
    if variant.startswith(NEGATORS):
        return False
    before = text[max(0, start - 2) : start]
    return before.endswith(NEGATORS)


class Keywords:
    """Loaded stopwords + complaint lexicon + a segmenter that knows every complaint variant
    as a word."""

    def __init__(
        self,
        stopwords: Iterable[str],
        lexicon: dict[str, tuple[str, ...]],
        *,
        limit: int = 10,
    ) -> None:
        self.stopwords = frozenset(stopwords)
        self.lexicon = lexicon
        self.limit = limit
        pairs = {(v, canonical) for canonical, vs in lexicon.items() for v in vs}
        self.variants = sorted(pairs, key=lambda pair: (-len(pair[0]), pair[0]))
        # Variant indices by first character: a text is searched only for the variants that
        # can start in it (about 10 of 190), in the order of ``variants``.
        self._by_first: dict[str, list[int]] = {}
        for index, (variant, _) in enumerate(self.variants):
            self._by_first.setdefault(variant[0], []).append(index)
        # Those first characters, found in a text at C speed.
        self._first_chars = re.compile("|".join(map(re.escape, self._by_first)) or "(?!)")
        # Tokens repeat across reviews: the test of each is remembered (a bounded cache).
        self._content_word = lru_cache(maxsize=CONTENT_WORD_CACHE)(
            partial(is_content_word, stopwords=self.stopwords)
        )
        self.segmenter = Segmenter((variant, VARIANT_FREQ) for variant, _ in self.variants)

    @cached_property
    def reference_tokenizer(self) -> jieba.Tokenizer:
        """jieba itself with the same words added: what :attr:`segmenter` is measured
        against (tests, ``bench.overhead``). Built on first use (half a second, ~70 MB)."""
        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        for variant, _ in self.variants:
            tokenizer.add_word(variant, freq=VARIANT_FREQ)
        return tokenizer

    @classmethod
    def load(
        cls,
        *,
        limit: int = 10,
        stopwords_file: Path = STOPWORDS_FILE,
        lexicon_file: Path = COMPLAINT_LEXICON_FILE,
    ) -> Keywords:
        return cls(
            read_word_list(stopwords_file), read_complaint_lexicon(lexicon_file), limit=limit
        )

    def tokens(self, clean_text: str) -> list[str]:
        """The review's jieba tokens (precise mode, HMM on), whitespace dropped."""
        return segment(clean_text, self.segmenter)

    def extract(self, clean_text: str) -> ReviewTerms:
        tokens = self.tokens(clean_text)
        return ReviewTerms(
            keywords=select_keywords(tokens, self.stopwords, self.limit, self._content_word),
            complaint_keywords=find_complaints(clean_text, self._candidates(clean_text)),
        )

    def _candidates(self, text: str) -> list[tuple[str, str]]:
        """The variants whose first character is in ``text``, in the order of ``variants``:
        the others cannot match, so :func:`find_complaints` finds the same terms."""
        by_first = self._by_first
        indices = [i for char in set(self._first_chars.findall(text)) for i in by_first[char]]
        indices.sort()
        variants = self.variants
        return [variants[i] for i in indices]
