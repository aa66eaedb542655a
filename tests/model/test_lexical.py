"""The lexical half of a hybrid: the served TF-IDF model computes what scikit-learn does, is
stored without pickle, and the predictor fuses it before calibration, on both runtimes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from model.card import ModelCard
from model.corpus import SHIPPED_CORPUS
from model.lexical import VOCABULARY_FILE, WEIGHTS_FILE, CharNgrams, LexicalModel, fuse
from model.neutral import served_probabilities
from model.predictor import SentimentModel
from model.registry import resolve_model_dir
from model.text import clean_text
from training.data import load_file

ODD = ["", "A  b\t\tC", "  ", "好好好好好", "iPhone 13 Pro！！", "a\nb", "😀👍"]


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], np.ndarray]:
    reviews, _ = load_file(SHIPPED_CORPUS)
    sample = reviews[::40]
    return [clean_text(r.text) for r in sample], np.array(
        [int(r.label == "positive") for r in sample]
    )


@pytest.fixture(scope="module")
def fitted(corpus: tuple[list[str], np.ndarray]) -> tuple[TfidfVectorizer, LogisticRegression]:
    texts, y = corpus
    vectorizer = TfidfVectorizer(
        analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, max_features=20_000
    )
    classifier = LogisticRegression(C=4.0, solver="liblinear").fit(
        vectorizer.fit_transform(texts), y
    )
    return vectorizer, classifier


def _served(vectorizer: TfidfVectorizer, classifier: LogisticRegression) -> LexicalModel:
    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    return LexicalModel(
        vocabulary,
        vectorizer.idf_,
        classifier.coef_[0],
        float(classifier.intercept_[0]),
        CharNgrams(1, 3, lowercase=True),
    )


def test_the_served_tfidf_model_computes_what_sklearn_does(
    corpus: tuple[list[str], np.ndarray], fitted: tuple[TfidfVectorizer, LogisticRegression]
) -> None:
    vectorizer, classifier = fitted
    texts = corpus[0][::3] + ODD
    expected = classifier.decision_function(vectorizer.transform(texts))
    assert np.allclose(_served(*fitted).log_odds(texts), expected, atol=1e-9)
    analyzer = vectorizer.build_analyzer()
    for text in ODD:
        assert CharNgrams().ngrams(text) == analyzer(text)


def test_it_is_stored_as_json_and_safetensors_and_loads_back(
    tmp_path: Path, fitted: tuple[TfidfVectorizer, LogisticRegression]
) -> None:
    model = _served(*fitted)
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([VOCABULARY_FILE, WEIGHTS_FILE])
    assert json.loads((tmp_path / VOCABULARY_FILE).read_text(encoding="utf-8"))[:1] == [
        next(iter(model.index))
    ]
    loaded = LexicalModel.load(tmp_path, CharNgrams())
    texts = ["物流很快，质量不错", "送餐超时一个小时，饭都凉了"]
    assert np.allclose(loaded.log_odds(texts), model.log_odds(texts), atol=1e-5)  # float32


def test_fusion_weights_the_log_odds() -> None:
    network = np.array([[-1.0, 3.0], [2.0, 0.0]])
    lexical = np.array([-2.0, 1.0])
    fused = fuse(network, lexical, 0.25)
    log_odds = fused[:, 1] - fused[:, 0]
    assert np.allclose(log_odds, 0.25 * np.array([4.0, -2.0]) + 0.75 * lexical)
    assert np.allclose(fuse(network, lexical, 1.0), network)
    with pytest.raises(ValueError):
        fuse(np.zeros((2, 3)), lexical, 0.5)
    with pytest.raises(ValueError):
        LexicalModel(["a", "a"], np.ones(2), np.ones(2), 0.0, CharNgrams())


@pytest.fixture(scope="module")
def hybrid_dir(tiny_registry: Path) -> Path:
    directory = resolve_model_dir(tiny_registry, "sentiment")
    assert ModelCard.read(directory).lexical is not None, "training packages a hybrid"
    return directory


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_the_predictor_fuses_before_calibration(hybrid_dir: Path, runtime: str) -> None:
    model = SentimentModel.load(hybrid_dir, threads=1, runtime=runtime)
    lexical = model.card.lexical
    assert lexical is not None and 0.0 <= lexical.weight <= 1.0
    texts = [clean_text(t) for t in ("质量很好，非常满意", "太差了，退货", "一般吧")]
    odds = model.lexical_log_odds(texts)
    expected = fuse(model.network_logits(texts), odds, lexical.weight)
    assert np.allclose(model.logits(texts), expected, atol=1e-6)
    served = served_probabilities(expected, model.model_labels, model.temperature, model.band)
    probabilities = [list(p.probabilities.values()) for p in model.predict_cleaned(texts)]
    assert np.allclose(probabilities, served, atol=1e-6)


def test_a_tampered_lexical_half_is_refused(hybrid_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(hybrid_dir, copy)
    (copy / VOCABULARY_FILE).write_text('["a"]', encoding="utf-8")
    with pytest.raises(ValueError, match="does not match the sha256"):
        SentimentModel.load(copy, threads=1)
    shutil.copy2(hybrid_dir / VOCABULARY_FILE, copy / VOCABULARY_FILE)
    (copy / WEIGHTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="names a lexical half"):
        SentimentModel.load(copy, threads=1)


def test_the_batch_path_computes_what_the_per_text_reference_does(
    corpus: tuple[list[str], np.ndarray], fitted: tuple[TfidfVectorizer, LogisticRegression]
) -> None:
    """The packed n-gram lookup against the Python definition, on the corpus and on texts
    at the edges: empty, shorter than an n-gram, whitespace runs, astral characters, a lone
    surrogate, uppercase, and batches of one."""
    model = _served(*fitted)
    edges = [*ODD, "a", "ab", "\ud800x", "ÄÖÜ  ẞ", "好" * 300, "𠀀𠀁𠀂", " ", "\t\n"]
    texts = corpus[0] + edges
    assert np.allclose(model.log_odds(texts), model.reference_log_odds(texts), atol=1e-12)
    for text in edges:
        assert np.allclose(model.log_odds([text]), model.reference_log_odds([text]), atol=1e-12)
    assert model.log_odds([]).shape == (0,)


def test_n_grams_longer_than_three_characters_take_the_reference_path(
    corpus: tuple[list[str], np.ndarray],
) -> None:
    texts, y = corpus
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(2, 4), min_df=2, sublinear_tf=True)
    classifier = LogisticRegression(solver="liblinear").fit(vectorizer.fit_transform(texts), y)
    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    model = LexicalModel(
        vocabulary,
        vectorizer.idf_,
        classifier.coef_[0],
        float(classifier.intercept_[0]),
        CharNgrams(2, 4, lowercase=True),
    )
    expected = classifier.decision_function(vectorizer.transform(texts[:50]))
    assert np.allclose(model.log_odds(texts[:50]), expected, atol=1e-9)
