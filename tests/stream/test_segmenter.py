"""``stream.segmenter`` gives jieba's own tokens (precise mode, HMM on), on the corpus and on
text jieba treats specially, with the complaint lexicon's words added."""

from __future__ import annotations

import pytest

from model.corpus import SHIPPED_CORPUS
from model.text import clean_text
from stream.keywords import Keywords
from stream.replay import read_corpus
from stream.segmenter import Segmenter

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
