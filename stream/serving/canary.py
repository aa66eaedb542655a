"""The canary a model must pass before it serves or scores in shadow.

A few fixed reviews, clearly positive or clearly negative, across the corpus's kinds of shop.
A model passes when it returns one well-formed prediction per text (a known label, finite
probabilities of the three labels that sum to 1, the label being the most probable) and
tells the positive reviews from the negative ones (P(positive) against P(negative), the
neutral band aside) no worse than ``tolerance`` below the validation accuracy its card
records. That catches a model directory whose weights and card do not belong together
(a broken export, the wrong file copied in) without judging the model's quality, which
training's gate and the shadow comparison do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from model.labels import NEGATIVE, POSITIVE, SENTIMENTS
from model.text import clean_text
from stream.serving.holder import Predictor

CANARY_POSITIVE: tuple[str, ...] = (
    "质量很好，非常满意，会回购的",
    "物流很快，包装完好，好评",
    "屏幕清晰，运行流畅，性价比高",
    "衣服很合身，面料舒服，颜色也好看",
    "酒店位置好，房间干净，服务热情",
    "水果很新鲜，很甜，下次还买",
    "书的印刷很清楚，内容很精彩",
    "洗发水味道好闻，洗完头发很顺",
    "热水器安装师傅很专业，出水快",
    "电脑配置不错，开机速度快，满意",
    "牛奶口感好，宝宝很喜欢喝",
    "东西不错，值得购买，推荐",
)
CANARY_NEGATIVE: tuple[str, ...] = (
    "质量太差了，用了两天就坏了",
    "物流太慢，包装破损，差评",
    "屏幕有坏点，经常死机，退货",
    "衣服起球掉色，做工粗糙",
    "酒店房间很脏，隔音差，服务态度恶劣",
    "水果都烂了，又酸又小，再也不买",
    "书是盗版的，印刷模糊，缺页",
    "洗发水用了头皮痒，掉头发",
    "热水器漏水，客服也不处理",
    "电脑发热严重，风扇噪音大，很失望",
    "牛奶有股怪味，喝了拉肚子",
    "送餐超时一个小时，饭都凉了，太差了",
)
_SUM_TOLERANCE = 1e-3


class CanaryFailed(ValueError):
    """The model must not serve; the message says why."""


@dataclass(frozen=True)
class CanaryResult:
    texts: int
    accuracy: float  # positive vs negative on the canary reviews
    reference: float | None  # the card's validation accuracy, when it records one


def check_predictions(predictions: Sequence[Any], count: int) -> None:
    """Raise :class:`CanaryFailed` unless ``predictions`` are ``count`` well-formed ones."""
    if len(predictions) != count:
        raise CanaryFailed(f"{len(predictions)} predictions for {count} texts")
    for i, prediction in enumerate(predictions):
        label = getattr(prediction, "label", None)
        probabilities = getattr(prediction, "probabilities", None)
        if label not in SENTIMENTS:
            raise CanaryFailed(f"prediction {i}: label {label!r} is not one of {SENTIMENTS}")
        if not isinstance(probabilities, Mapping) or set(probabilities) != set(SENTIMENTS):
            raise CanaryFailed(f"prediction {i}: probabilities {probabilities!r} lack labels")
        values = [float(probabilities[name]) for name in SENTIMENTS]
        if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in values):
            raise CanaryFailed(f"prediction {i}: probabilities {values} are not in [0, 1]")
        if abs(sum(values) - 1.0) > _SUM_TOLERANCE:
            raise CanaryFailed(f"prediction {i}: probabilities sum to {sum(values):.6f}, not 1")
        if float(probabilities[label]) < max(values) - _SUM_TOLERANCE:
            raise CanaryFailed(f"prediction {i}: label {label!r} is not the most probable")


def card_accuracy(model: Predictor) -> float | None:
    """The validation accuracy recorded in the model's card, if any."""
    card = getattr(model, "card", None)
    metrics = getattr(card, "metrics", None) or {}
    value = (metrics.get("validation") or {}).get("accuracy")
    return float(value) if isinstance(value, int | float) else None


def run_canary(model: Predictor, *, version: str, tolerance: float) -> CanaryResult:
    """Check ``model`` (loaded as registry ``version``) on the canary reviews, on the
    calling thread; raises :class:`CanaryFailed` with the reason."""
    if model.version != version:
        raise CanaryFailed(
            f"the model card says version {model.version!r}, the registry {version!r}"
        )
    texts = [clean_text(text) for text in (*CANARY_POSITIVE, *CANARY_NEGATIVE)]
    try:
        predictions = model.predict_cleaned(texts)
    except Exception as exc:
        raise CanaryFailed(f"prediction failed: {exc!r}") from exc
    check_predictions(predictions, len(texts))
    expected = [POSITIVE] * len(CANARY_POSITIVE) + [NEGATIVE] * len(CANARY_NEGATIVE)
    right = sum(
        (p.probabilities[POSITIVE] >= p.probabilities[NEGATIVE]) == (want == POSITIVE)
        for p, want in zip(predictions, expected, strict=True)
    )
    accuracy = right / len(texts)
    reference = card_accuracy(model)
    if reference is not None and accuracy < reference - tolerance:
        raise CanaryFailed(
            f"canary accuracy {accuracy:.3f} on {len(texts)} reviews is more than "
            f"{tolerance} below the card's validation accuracy {reference:.3f}"
        )
    return CanaryResult(texts=len(texts), accuracy=accuracy, reference=reference)
