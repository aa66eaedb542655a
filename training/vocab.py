"""A character vocabulary built from the corpus, as a BERT-style fast tokenizer.

BERT's Chinese tokenizer is character-level: the normaliser puts spaces around every CJK
character and WordPiece then looks each one up. Latin words and numbers are spelled out
character by character through ``##`` continuation pieces, so nothing common becomes [UNK].
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _is_cjk(char: str) -> bool:
    return "CJK" in unicodedata.name(char, "")


def build_char_vocab(
    texts: Iterable[str], *, min_count: int = 2, max_size: int = 8000
) -> list[str]:
    """Specials, then characters seen at least ``min_count`` times (most frequent first);
    every non-CJK character also gets its ``##`` continuation piece."""
    counts = Counter(char.lower() for text in texts for char in text if not char.isspace())
    chars = [
        c for c, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])) if n >= min_count
    ]
    vocab = list(SPECIAL_TOKENS)
    for char in chars:
        if len(vocab) >= max_size:
            break
        vocab.append(char)
        if not _is_cjk(char):
            vocab.append("##" + char)
    return vocab


def build_tokenizer(vocab: list[str]) -> Tokenizer:
    """A ``tokenizers`` WordPiece tokenizer over ``vocab`` that behaves like BERT-Chinese."""
    ids = {token: index for index, token in enumerate(vocab)}
    tokenizer = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    return tokenizer


def build_wordpiece_tokenizer(
    texts: Iterable[str], *, vocab_size: int = 20000, min_count: int = 3, max_piece: int = 4
) -> Tokenizer:
    """A WordPiece tokenizer whose vocabulary holds frequent *words*, not just characters.

    CJK runs are not split into characters; instead the vocabulary keeps every character seen
    ``min_count`` times (as a word start and as a ``##`` continuation) plus the most frequent
    2..``max_piece`` character substrings at word starts and inside words. WordPiece's greedy
    longest match then reads "物流" or "性价比" as one token: sequences get about a third
    shorter and the embeddings carry word-level meaning at no extra compute. The selection is
    a plain count with ties broken by the string, so the same texts always give the same
    vocabulary (the ``tokenizers`` trainer breaks ties differently from run to run)."""
    pre = pre_tokenizers.BertPreTokenizer()
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=True
    )
    chars: Counter[str] = Counter()
    grams: Counter[str] = Counter()
    for text in texts:
        for word, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)):
            chars.update(word)
            for start in range(len(word)):
                prefix = "" if start == 0 else "##"
                for size in range(2, max_piece + 1):
                    if start + size > len(word):
                        break
                    grams[prefix + word[start : start + size]] += 1
    vocab = list(SPECIAL_TOKENS)
    for char, count in sorted(chars.items(), key=lambda item: (-item[1], item[0])):
        if count >= min(2, min_count):
            vocab += [char, "##" + char]
    room = max(0, vocab_size - len(vocab))
    frequent = sorted(
        (item for item in grams.items() if item[1] >= min_count),
        key=lambda item: (-item[1], item[0]),
    )
    vocab += [gram for gram, _ in frequent[:room]]
    ids = {token: index for index, token in enumerate(vocab)}
    tokenizer = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=1000))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    return tokenizer


def save_hf_tokenizer(tokenizer: Tokenizer, directory: Path, *, max_length: int) -> None:
    """Write the tokenizer so ``AutoTokenizer.from_pretrained(directory)`` loads it."""
    from transformers import BertTokenizerFast

    split_chinese = tokenizer.normalizer.__getstate__()
    chinese_chars = b'"handle_chinese_chars":true' in split_chinese

    fast = BertTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        do_lower_case=True,
        tokenize_chinese_chars=chinese_chars,
        strip_accents=False,
        model_max_length=max_length,
    )
    fast.save_pretrained(str(directory))
