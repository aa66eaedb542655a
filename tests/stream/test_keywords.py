"""Cleaning on the serving path, jieba segmentation, keywords and complaint terms."""

from __future__ import annotations

import pytest

from model.text import clean_text
from stream.keywords import (
    COMPLAINT_LEXICON_FILE,
    Keywords,
    find_complaints,
    read_complaint_lexicon,
    read_word_list,
    select_keywords,
)


@pytest.fixture(scope="module")
def keywords() -> Keywords:
    return Keywords.load(limit=5)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\ufeff  很好用！！  ", "很好用!!"),
        ("质量\u200b不错<br/>推荐", "质量不错 推荐"),
        ("看 http://x.cn/a 这里", "看 这里"),
        ("太太太太太太好了", "太太太好了"),
        ("ＡＢＣ１２３", "ABC123"),
        ("\t\n", ""),
        ("好\x07用\x00了\ue000", "好 用 了"),  # control and private-use characters
        ("一\u3000二\u2028三", "一 二 三"),  # non-ASCII spaces and separators
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_segmentation_keeps_complaint_variants_whole(keywords: Keywords) -> None:
    text = "用了两个月就漏水了，客服不理人，要求退货也不给退，质量太差。"
    terms, tokens = keywords.extract(text), keywords.tokens(text)
    assert "漏水" in tokens
    assert "质量太差" in tokens
    assert "，" in tokens  # segmentation keeps punctuation; keywords drop it
    assert terms.complaint_keywords == ["漏水", "客服差", "退货", "质量差"]
    assert "，" not in terms.keywords
    assert "了" not in terms.keywords
    assert len(terms.keywords) <= 5


def test_positive_review_has_keywords_but_no_complaints(keywords: Keywords) -> None:
    terms = keywords.extract("书的内容很好，印刷清晰，物流也快，推荐购买。")
    assert terms.complaint_keywords == []
    assert {"内容", "印刷", "清晰", "物流"} <= set(terms.keywords)


def test_negated_complaints_are_ignored(keywords: Keywords) -> None:
    assert keywords.extract("用了一年也不漏水，没有坏，不是假货").complaint_keywords == []
    # a variant that itself starts with a negator still counts
    assert keywords.extract("热水器不加热了").complaint_keywords == ["不工作"]


def test_longest_variant_claims_its_characters() -> None:
    variants = [("包装破损", "包装差"), ("破损", "损坏")]
    assert find_complaints("包装破损了", variants) == ["包装差"]
    assert find_complaints("包装破损,屏幕也破损了", variants) == ["包装差", "损坏"]


def test_keyword_ranking_by_frequency_then_position() -> None:
    tokens = ["电池", "的", "屏幕", "电池", "123", "a", "屏幕", "电池", "外观", "!!"]
    assert select_keywords(tokens, frozenset({"的"}), 2) == ["电池", "屏幕"]
    assert select_keywords(tokens, frozenset(), 10) == ["电池", "屏幕", "外观"]


def test_resources_are_well_formed() -> None:
    lexicon = read_complaint_lexicon(COMPLAINT_LEXICON_FILE)
    for needed in ("质量差", "损坏", "漏水", "假货", "退货", "发货慢"):
        assert needed in lexicon
    assert all(canonical in variants for canonical, variants in lexicon.items())
    stopwords = read_word_list(COMPLAINT_LEXICON_FILE.parent / "stopwords_zh.txt")
    assert "的" in stopwords and len(stopwords) == len(set(stopwords))


def test_complaints_of_the_candidate_variants_are_those_of_all_variants(
    keywords: Keywords,
) -> None:
    """``extract`` searches only variants whose first character is in the text: the same
    terms as searching all of them, on a corpus sample and on lexicon-heavy text."""
    from model.corpus import SHIPPED_CORPUS
    from stream.replay import read_corpus

    sources = read_corpus(SHIPPED_CORPUS)[:3000]
    texts = [clean_text(source.text) for source in sources]
    texts += ["包装破损,屏幕也破损了,不漏水但是漏水", "客服态度差质量有问题与描述不符"]
    found = 0
    for text in texts:
        expected = find_complaints(text, keywords.variants)
        assert keywords.extract(text).complaint_keywords == expected, text
        found += bool(expected)
    assert found > 100
