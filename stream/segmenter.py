"""jieba's precise mode with HMM, through jieba-rs (``rjieba``). Pure once built.

jieba-rs is jieba in Rust: the same dictionary, route and HMM, at about a fifth of the CPU
of ``jieba.Tokenizer.lcut(text, HMM=True)`` (about 11 µs against 57 µs a corpus review).
Its tokens differ from jieba's in three ways; the first two are undone here, the third is
measured:

- A stretch of letters, digits and symbols that jieba's HMM step splits with finalseg's
  pattern ("60-70" → "60", "-", "70"; "a-b_c.d") jieba-rs keeps whole. A token that is not
  one character, not all Han and not a dictionary word is split as finalseg splits it.
- Characters of CJK blocks outside jieba's runs (Extension A, compatibility ideographs, the
  end of the unified block) jieba-rs reads as part of a run, where jieba makes each its own
  token. A text holding any is cut run by run, delimited as jieba delimits them.
- Two routes of equal probability (up to float rounding: "滚滚|滚" against "滚|滚滚") may go
  the other way. On the 62,680 distinct corpus texts, 6 token lists differ, 5 of them only
  in order; 1 keyword list differs. ``tests/stream/test_segmenter.py`` holds these bounds
  and exact equality on special and fuzzed text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import jieba
import rjieba
from jieba import finalseg

# jieba's block patterns (precise mode): its runs and the separators between them; and
# finalseg's, which splits what its HMM step is given into Han blocks and the rest.
_RUN = jieba.re_han_default
_SKIP = jieba.re_skip_default
_HAN = finalseg.re_han
_HAN_SKIP = finalseg.re_skip
# The stated tolerance: the share of texts whose tokens may differ from jieba's (exact route
# ties; 6 of 62,680 corpus texts measured). The tests and bench.overhead hold this bound.
TIE_TOLERANCE = 0.0002
# CJK characters jieba-rs takes into a run and jieba does not.
_RUN_IN_RS_ONLY = re.compile(
    "[\u3400-\u4dbf\u9fd6-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ebef"
    "\U0002f800-\U0002fa1f]"
)
# Two adjacent run characters that are not Han: the only place jieba-rs can leave a
# multi-character token that jieba's HMM step would have split.
_TWO_NON_HAN = re.compile(r"[a-zA-Z0-9+#&._%\-]{2}")


class Segmenter:
    """Tokens of ``jieba.Tokenizer.lcut(text, HMM=True)`` for a tokenizer that has
    ``words`` added (``add_word(word, freq)``), whitespace tokens included."""

    def __init__(self, words: Iterable[tuple[str, int]] = ()) -> None:
        self._jieba = rjieba.Jieba()
        for word, freq in words:
            self._jieba.add_word(word, freq, None)

    def cut(self, text: str) -> list[str]:
        if _RUN_IN_RS_ONLY.search(text):
            return self._cut_by_runs(text)
        tokens = self._jieba.cut(text, True)
        return self._split_non_words(tokens) if _TWO_NON_HAN.search(text) else tokens

    def _cut_by_runs(self, text: str) -> list[str]:
        """jieba's own loop over runs and separators, with each run cut by jieba-rs."""
        tokens: list[str] = []
        # re.split with one group: separators at even indices, runs (the group) at odd ones.
        for index, block in enumerate(_RUN.split(text)):
            if index & 1:
                tokens.extend(self._split_non_words(self._jieba.cut(block, True)))
            elif block:
                for part_index, part in enumerate(_SKIP.split(block)):
                    if part_index & 1:
                        tokens.append(part)
                    else:
                        tokens.extend(part)  # one token per character, as jieba does
        return tokens

    def _split_non_words(self, tokens: list[str]) -> list[str]:
        """Split what jieba's HMM step (``finalseg.cut``) splits: a token that is not one
        character, not all Han and not a word becomes its Han blocks and finalseg's pieces
        of the rest."""
        out: list[str] = []
        is_word = self._jieba.has_word
        for token in tokens:
            if len(token) == 1 or _HAN.fullmatch(token) or is_word(token):
                out.append(token)
                continue
            for index, block in enumerate(_HAN.split(token)):
                if index & 1:
                    out.append(block)
                elif block:
                    out.extend(piece for piece in _HAN_SKIP.split(block) if piece)
        return out
