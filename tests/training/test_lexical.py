"""Fitting the hybrid's TF-IDF half: C and the fusion weight are chosen on validation only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.corpus import SHIPPED_CORPUS
from model.lexical import CharNgrams, LexicalModel
from training.lexical import LexicalRequest, add_lexical_half, choose_weight, fit_lexical
from training.pipeline import label_ids, prepare_data


def test_the_weight_goes_to_whichever_side_validation_says_is_right() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    signal = np.where(y == 1, 2.0, -2.0) + rng.normal(0, 0.5, 400)
    noise = rng.normal(0, 2.0, 400)
    as_logits = lambda odds: np.stack([-odds / 2, odds / 2], axis=1)  # noqa: E731
    weight, table = choose_weight(as_logits(signal), noise, y)
    assert weight >= 0.9 and table[weight]["accuracy"] == 1.0
    weight, table = choose_weight(as_logits(noise), signal, y)
    assert weight <= 0.1 and table[weight]["accuracy"] == 1.0
    assert set(table) == {round(0.05 * i, 2) for i in range(21)}  # both ends are candidates
    assert all(np.isfinite(row["log_loss"]) for row in table.values())


def test_c_is_chosen_on_validation_and_the_half_is_stored_as_served(tmp_path: Path) -> None:
    data = prepare_data([SHIPPED_CORPUS], sample=1500)
    split = data.split
    y_train, y_val = (label_ids(p, data.labels) for p in (split.train, split.validation))
    request = LexicalRequest(c_grid=(0.01, 4.0))
    fit = fit_lexical(
        [r.text for r in split.train], y_train, [r.text for r in split.validation], y_val, request
    )
    assert fit.c == max(fit.validation_accuracy_by_c, key=fit.validation_accuracy_by_c.get)
    assert fit.c == 4.0  # C=0.01 all but ignores the features
    network = np.zeros((len(split.validation), 2))  # an uninformed network: all TF-IDF
    card, served = add_lexical_half(
        tmp_path,
        [r.text for r in split.train],
        y_train,
        [r.text for r in split.validation],
        y_val,
        network,
        request,
    )
    assert card.weight < 1.0 and card.c == 4.0 and card.ngram_range == (1, 3)
    reloaded = LexicalModel.load(tmp_path, card.ngrams)
    texts = [r.text for r in split.test]
    assert np.allclose(reloaded.log_odds(texts), served.log_odds(texts))
    assert reloaded.ngrams == CharNgrams(1, 3, True)
    assert set(card.sha256) == {card.vocabulary_file, card.weights_file}
    assert card.selection["validation_accuracy_by_c"] == fit.validation_accuracy_by_c
