"""The served model charges its thread CPU time to tokenize and forward when asked."""

from pathlib import Path

from model.cputime import ThreadCpu
from model.predictor import SentimentModel
from model.registry import resolve_model_dir


def test_the_model_splits_tokenize_from_forward_without_changing_predictions(
    tiny_registry: Path,
) -> None:
    model = SentimentModel.load(resolve_model_dir(tiny_registry, "sentiment"), threads=2)
    texts = ["质量很好，物流也快", "太差了，再也不买了", "一般般吧"] * 40
    cpu = ThreadCpu()
    assert model.predict_cleaned(texts, cpu) == model.predict_cleaned(texts)
    assert set(cpu.seconds) == {"tokenize", "forward"}
    assert cpu.seconds["forward"] > 0 and cpu.seconds["tokenize"] >= 0
