"""jieba's precise mode with HMM, the same tokens at a fraction of the CPU. Pure once built.

``jieba.Tokenizer.lcut(text, HMM=True)`` builds a dict-of-lists DAG, then a route through it
with a generator per position, for every run of Chinese and alphanumerics; stretches of
single characters that are not a word go to ``jieba.finalseg``'s HMM, whose Viterbi builds
lists of tuples and copies a path per state per character. This does the same arithmetic
with less machinery, and keeps the tokens of recent runs and stretches: reviews repeat
short runs ("质量很好", "物流很快"), and a run's tokens depend on the run alone.

- The route: one pass, one dictionary look-up per fragment (the log-probability of each
  word, computed once and kept, is the same float jieba computes every time).
- The HMM: :class:`Viterbi`, jieba.finalseg's model and Viterbi with the four states
  unrolled and back-pointers instead of path copies. Every candidate score is the same sum
  in the same order as jieba's, and ties go the way ``max`` over ``(score, state)`` tuples
  sends them, so the states (and tokens) are jieba's.

``tests/stream/test_segmenter.py`` holds the tokens to jieba's own on the corpus, and the
HMM's states to ``jieba.finalseg.viterbi``'s on the corpus and on generated stretches.

Built from a tokenizer whose dictionary is complete (words added later are not seen).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from math import log

import jieba
from jieba import finalseg

# jieba's own block patterns (precise mode): runs it segments, and the separators between;
# and finalseg's, for the stretches it is given.
_RUN = jieba.re_han_default
_SKIP = jieba.re_skip_default
_HAN = finalseg.re_han
_HAN_SKIP = finalseg.re_skip

_PREFIX = 1.0  # a fragment that only starts words (FREQ 0); real log-probabilities are < 0


class Segmenter:
    """Tokens of ``jieba.Tokenizer.lcut(text, HMM=True)``, whitespace tokens included."""

    def __init__(self, tokenizer: jieba.Tokenizer, *, cached_runs: int = 65536) -> None:
        tokenizer.check_initialized()
        self._freq: dict[str, int] = tokenizer.FREQ
        self._logtotal = log(tokenizer.total)
        # FREQ with each word's log-probability (jieba's log(freq) - log(total)), and _PREFIX
        # for fragments that only start words: one look-up per fragment (0.1 s, ~30 MB).
        logtotal = self._logtotal
        self._logp: dict[str, float] = {
            word: log(freq) - logtotal if freq else _PREFIX for word, freq in self._freq.items()
        }
        self._viterbi = Viterbi()
        self._run: Callable[[str], tuple[str, ...]] = lru_cache(maxsize=cached_runs)(self._cut_run)
        # Unknown stretches go to the HMM; short ones repeat ("挺好", "好评").
        self._hmm: Callable[[str], tuple[str, ...]] = lru_cache(maxsize=cached_runs)(
            self._cut_unknown
        )

    def cut(self, text: str) -> list[str]:
        tokens: list[str] = []
        # re.split with one group: separators at even indices, runs (the group) at odd ones.
        for index, block in enumerate(_RUN.split(text)):
            if index & 1:
                tokens.extend(self._run(block))
            elif block:
                for part_index, part in enumerate(_SKIP.split(block)):
                    if part_index & 1:
                        tokens.append(part)
                    else:
                        tokens.extend(part)  # one token per character, as jieba does
        return tokens

    def _route(self, run: str) -> list[int]:
        """For each position, the end (inclusive) of the word jieba's best route takes there
        (``Tokenizer.get_DAG`` + ``Tokenizer.calc`` in one pass, ties to the longer word)."""
        get = self._logp.get
        size = len(run)
        score = [0.0] * (size + 1)
        end = [0] * (size + 1)
        for start in range(size - 1, -1, -1):
            after = score[start + 1]
            p = get(run[start])
            if p is None:  # no word starts here: jieba's DAG takes the character alone
                score[start] = self._char_logp(run[start]) + after
                end[start] = start
                continue
            if p != _PREFIX:
                best_p, best_x = p + after, start
            else:
                best_p, best_x = 0.0, -1
            i = start + 1
            while i < size:
                p = get(run[start : i + 1])
                if p is None:  # not in the dictionary: no longer word from here
                    break
                if p != _PREFIX:
                    p += score[i + 1]
                    if best_x < 0 or p >= best_p:  # max((p, x)): equal p, larger x wins
                        best_p, best_x = p, i
                i += 1
            if best_x < 0:  # only prefixes: the character alone, as jieba's DAG falls back
                best_p, best_x = self._char_logp(run[start]) + after, start
            score[start] = best_p
            end[start] = best_x
        return end

    def _char_logp(self, char: str) -> float:
        # jieba: log(FREQ.get(char) or 1) - log(total), for a character no word starts with.
        return log(self._freq.get(char) or 1) - self._logtotal

    def _cut_run(self, run: str) -> tuple[str, ...]:
        """``Tokenizer.__cut_DAG``: the route's words, single characters gathered and, when
        they are not a known word, cut by jieba's HMM."""
        end = self._route(run)
        tokens: list[str] = []
        buffer = ""
        x = 0
        size = len(run)
        while x < size:
            y = end[x] + 1
            word = run[x:y]
            if y - x == 1:
                buffer += word
            else:
                if buffer:
                    self._flush(buffer, tokens)
                    buffer = ""
                tokens.append(word)
            x = y
        if buffer:
            self._flush(buffer, tokens)
        return tuple(tokens)

    def _flush(self, buffer: str, tokens: list[str]) -> None:
        if len(buffer) == 1:
            tokens.append(buffer)
        elif self._logp.get(buffer, _PREFIX) == _PREFIX:  # not a word: FREQ has no count
            tokens.extend(self._hmm(buffer))
        else:
            tokens.extend(buffer)

    def _cut_unknown(self, stretch: str) -> tuple[str, ...]:
        """``jieba.finalseg.cut``: Chinese blocks by the HMM, the rest split as finalseg
        splits it."""
        tokens: list[str] = []
        for index, block in enumerate(_HAN.split(stretch)):
            if index & 1:
                tokens.extend(self._viterbi.words(block))
            elif block:
                tokens.extend(part for part in _HAN_SKIP.split(block) if part)
        return tuple(tokens)


class Viterbi:
    """``jieba.finalseg``'s HMM (states B, M, E, S) and its Viterbi, unrolled.

    finalseg computes, per character and state ``y``, ``max((V[y0] + trans[y0][y] + emit,
    y0) for y0 in PrevStatus[y])``; here both sums are computed the same way and the tie
    goes to the larger state letter, as the tuple comparison sends it. The last state is the
    better of E and S (S on a tie)."""

    def __init__(
        self,
        start: Mapping[str, float] = finalseg.start_P,
        trans: Mapping[str, Mapping[str, float]] = finalseg.trans_P,
        emit: Mapping[str, Mapping[str, float]] = finalseg.emit_P,
    ) -> None:
        low = finalseg.MIN_FLOAT
        self.start = tuple(start[state] for state in "BMES")
        self.emit = tuple(emit[state] for state in "BMES")
        # finalseg reads trans_p[y0].get(y, MIN_FLOAT): the same values, named by edge.
        edge = {(a, b): trans[a].get(b, low) for a in "BMES" for b in "BMES"}
        self.trans = (
            edge["E", "B"],
            edge["S", "B"],
            edge["M", "M"],
            edge["B", "M"],
            edge["S", "S"],
            edge["E", "S"],
            edge["B", "E"],
            edge["M", "E"],
        )

    def states(self, text: str) -> str:
        """The best state sequence, as jieba.finalseg.viterbi's path (``"BMES..."``)."""
        low = finalseg.MIN_FLOAT
        emit_b, emit_m, emit_e, emit_s = (table.get for table in self.emit)
        eb, sb, mm, bm, ss, es, be, me = self.trans
        first = text[0]
        start_b, start_m, start_e, start_s = self.start
        vb = start_b + emit_b(first, low)
        vm = start_m + emit_m(first, low)
        ve = start_e + emit_e(first, low)
        vs = start_s + emit_s(first, low)
        # Per character, one back-pointer per state: True when the second predecessor won.
        back: list[tuple[bool, bool, bool, bool]] = []
        for char in text[1:]:
            b, m, e, s = emit_b(char, low), emit_m(char, low), emit_e(char, low), emit_s(char, low)
            # B from E or S; M from M or B; S from S or E; E from B or M (PrevStatus order).
            from_e, from_s = ve + eb + b, vs + sb + b
            b_s = from_s >= from_e  # ("S" > "E")
            from_m, from_b = vm + mm + m, vb + bm + m
            m_m = from_m >= from_b  # ("M" > "B")
            s_from_s, s_from_e = vs + ss + s, ve + es + s
            s_s = s_from_s >= s_from_e  # ("S" > "E")
            e_from_b, e_from_m = vb + be + e, vm + me + e
            e_m = e_from_m >= e_from_b  # ("M" > "B")
            vb = from_s if b_s else from_e
            vm = from_m if m_m else from_b
            vs = s_from_s if s_s else s_from_e
            ve = e_from_m if e_m else e_from_b
            back.append((b_s, m_m, s_s, e_m))
        state = "S" if vs >= ve else "E"
        path = [state]
        for b_s, m_m, s_s, e_m in reversed(back):
            if state == "B":
                state = "S" if b_s else "E"
            elif state == "M":
                state = "M" if m_m else "B"
            elif state == "S":
                state = "S" if s_s else "E"
            else:
                state = "M" if e_m else "B"
            path.append(state)
        path.reverse()
        return "".join(path)

    def words(self, text: str) -> list[str]:
        """finalseg's ``__cut`` of a Chinese block, less the force-split words (see
        :meth:`Segmenter._cut_unknown`)."""
        states = self.states(text)
        words: list[str] = []
        begin = after = 0
        for i, state in enumerate(states):
            if state == "B":
                begin = i
            elif state == "E":
                words.append(text[begin : i + 1])
                after = i + 1
            elif state == "S":
                words.append(text[i])
                after = i + 1
        if after < len(text):
            words.append(text[after:])
        force = finalseg.Force_Split_Words
        if force:
            return [part for word in words for part in ((word,) if word not in force else word)]
        return words
