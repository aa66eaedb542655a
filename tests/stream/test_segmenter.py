"""``stream.segmenter`` gives jieba's own tokens (precise mode, HMM on), on the corpus and on
text jieba treats specially, with the complaint lexicon's words added; its HMM gives
``jieba.finalseg.viterbi``'s states on the corpus's unknown stretches and on generated ones."""

from __future__ import annotations

import random

import pytest
from jieba import finalseg

from model.corpus import SHIPPED_CORPUS
from model.text import clean_text
from stream.keywords import Keywords
from stream.replay import read_corpus
from stream.segmenter import Segmenter, Viterbi

SAMPLE = 4000  # unique corpus texts (about a second through both)
SPECIAL = [
    "",
    " ",
    "\r\n",
    "a\r\nb c\t好",
    "iPhone15Pro的屏幕真好, 5G信号一般, 价格3999元!",
    "好好好好好好好好好好好好好好",
    "不不不",
    "质量太差漏水漏水漏水，客服不理人",
    "😀很好用👍",
    "C++和C#都能写, 100%推荐 a-b_c.d",
    "瓩瓪瓫",  # characters outside the dictionary
]


@pytest.fixture(scope="module")
def keywords() -> Keywords:
    return Keywords.load()


def corpus_texts() -> list[str]:
    texts = dict.fromkeys(clean_text(source.text) for source in read_corpus(SHIPPED_CORPUS))
    return [text for text in texts if text][:SAMPLE]


def test_tokens_are_jiebas_on_the_corpus(keywords: Keywords) -> None:
    segmenter = Segmenter(keywords.tokenizer)
    texts = corpus_texts()
    assert len(texts) == SAMPLE
    for text in texts:
        assert segmenter.cut(text) == keywords.tokenizer.lcut(text, HMM=True), text
    for text in texts[:200]:  # again, from the caches
        assert segmenter.cut(text) == keywords.tokenizer.lcut(text, HMM=True), text


@pytest.mark.parametrize("text", SPECIAL)
def test_tokens_are_jiebas_on_special_text(keywords: Keywords, text: str) -> None:
    assert Segmenter(keywords.tokenizer).cut(text) == keywords.tokenizer.lcut(text, HMM=True)


def test_keywords_use_the_segmenter_and_keep_lexicon_words(keywords: Keywords) -> None:
    text = "用了两个月就漏水了，客服不理人，质量太差。"
    assert keywords.segmenter.cut(text) == keywords.tokenizer.lcut(text, HMM=True)
    assert "质量太差" in keywords.extract(text).tokens


def jieba_states(text: str) -> str:
    _, path = finalseg.viterbi(text, "BMES", finalseg.start_P, finalseg.trans_P, finalseg.emit_P)
    return "".join(path)


def test_hmm_states_are_finalsegs_on_the_corpus(keywords: Keywords) -> None:
    """Every Chinese block the segmenter hands its HMM on the sample, against finalseg."""
    segmenter = Segmenter(keywords.tokenizer)
    stretches: list[str] = []
    unknown = segmenter._cut_unknown
    segmenter._cut_unknown = lambda stretch: (stretches.append(stretch), unknown(stretch))[1]
    segmenter._hmm = segmenter._cut_unknown  # no cache: see every stretch
    for text in corpus_texts():
        segmenter.cut(text)
    blocks = {block for s in stretches for block in finalseg.re_han.findall(s)}
    assert len(blocks) > 1000
    viterbi = Viterbi()
    for block in blocks:
        assert viterbi.states(block) == jieba_states(block), block


def test_hmm_states_are_finalsegs_on_generated_text() -> None:
    """Random stretches: characters the model has no emission for (MIN_FLOAT sums, ties),
    common ones, repeats, and single characters."""
    rng = random.Random(12)
    every = [chr(c) for c in range(0x4E00, 0x9FD6)]
    common = "的一是了我不人在有这个上们来到时大地为子中你说生国年着就那要下以会可也好很"
    rare = "瓩瓪瓫瓬瓭"
    viterbi = Viterbi()
    for n in range(6000):
        pool = (every, common, rare, common + rare)[n % 4]
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 16)))
        assert viterbi.states(text) == jieba_states(text), text
    for text in ("好", "好好好好好好", "瓩", "瓩瓩瓩瓩"):
        assert viterbi.states(text) == jieba_states(text), text
