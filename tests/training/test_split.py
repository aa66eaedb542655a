import random
from collections import Counter

from training.data import Review
from training.dedup import clean_and_dedup, near_duplicate_pairs, near_key
from training.split import stratified_split


def _corpus(n: int = 600) -> list[Review]:
    rng = random.Random(3)
    words = [
        "质量",
        "物流",
        "很好",
        "太差",
        "一般",
        "满意",
        "失望",
        "客服",
        "价格",
        "包装",
        "味道",
        "屏幕",
        "电池",
        "房间",
        "早餐",
    ]
    reviews = []
    for i in range(n):
        text = "".join(rng.choice(words) for _ in range(rng.randint(4, 12))) + f"{i}号"
        reviews.append(Review(text, rng.choice(["negative", "positive"]), rng.choice("ABC")))
    return reviews


def test_split_is_deterministic_and_independent_of_input_order() -> None:
    reviews = _corpus()
    shuffled = reviews[:]
    random.Random(9).shuffle(shuffled)
    first, second = stratified_split(reviews), stratified_split(shuffled)
    assert first.sha256 == second.sha256
    assert [r.text for r in first.test] == [r.text for r in second.test]


def test_split_is_stratified_by_category_and_label() -> None:
    split = stratified_split(_corpus(1200), validation=0.1, test=0.2, drop_near_duplicates=False)
    total = Counter((r.category, r.label) for r in split.train + split.validation + split.test)
    test = Counter((r.category, r.label) for r in split.test)
    for stratum, count in total.items():
        assert abs(test[stratum] - 0.2 * count) <= 1


def test_near_duplicates_collapse_and_contradictions_drop() -> None:
    reviews = [
        Review("  质量很好!!!  ", "positive"),
        Review("质量很好", "positive"),
        Review("质量很好。。", "negative"),  # same words: majority says positive
        Review("\ufeff", "positive"),  # empty after cleaning
        Review("还行吧", "positive"),
        Review("还行吧!", "negative"),  # tie: dropped as contradictory
        Review("不错", "positive"),
    ]
    kept, stats = clean_and_dedup(reviews)
    assert [(r.text, r.label) for r in kept] == [("质量很好!!!", "positive"), ("不错", "positive")]
    assert stats.empty == 1 and stats.contradictory == 2 and stats.duplicates == 2
    assert near_key("质量很好！！！") == near_key("质量 很好")


def test_no_review_or_near_duplicate_crosses_splits() -> None:
    base = _corpus(800)
    # near copies: one character changed, so the normalised keys differ
    copies = [Review(r.text[:-1] + "版", r.label, r.category) for r in base[:200]]
    kept, _ = clean_and_dedup(base + copies)
    split = stratified_split(kept)
    keys = [
        {near_key(r.text) for r in part} for part in (split.train, split.validation, split.test)
    ]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    train = [r.text for r in split.train]
    assert near_duplicate_pairs(train, [r.text for r in split.test]) == {}
    assert near_duplicate_pairs(train, [r.text for r in split.validation]) == {}
    assert sum(split.leaks_dropped.values()) > 0


def test_near_duplicate_pairs_finds_edited_copies_only() -> None:
    reference = ["这家酒店的房间很干净，服务也很热情，下次还会再来", "手机电池不耐用"]
    candidates = ["这家酒店的房间很干净，服务也很热情，下次还会再来的", "物流太慢了"]
    assert near_duplicate_pairs(reference, candidates) == {0: 0}
