import numpy as np
import pytest

from model.neutral import NeutralBand, served_probabilities, three_way_from_binary


def test_three_way_probabilities_sum_to_one_and_keep_the_two_class_odds() -> None:
    log_odds = np.array([-6.0, -1.0, 0.0, 0.3, 2.5, 9.0])
    probs = three_way_from_binary(log_odds, NeutralBand(center=0.0, half_width=1.2))
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.allclose(np.log(probs[:, 2] / probs[:, 0]), log_odds)


def test_neutral_wins_exactly_inside_the_band() -> None:
    band = NeutralBand(center=0.4, half_width=1.0)
    log_odds = np.array([-0.59, -0.61, 1.39, 1.41, 0.4])
    labels = three_way_from_binary(log_odds, band).argmax(axis=1)
    assert labels.tolist() == [1, 0, 1, 2, 1]


def test_without_a_band_neutral_never_wins_off_centre() -> None:
    log_odds = np.linspace(-5, 5, 21)
    labels = three_way_from_binary(log_odds[log_odds != 0], NeutralBand()).argmax(axis=1)
    assert 1 not in labels.tolist()


def test_band_as_probability_range() -> None:
    low, high = NeutralBand(center=0.0, half_width=np.log(3)).probability_range()
    assert low == pytest.approx(0.25) and high == pytest.approx(0.75)


def test_three_class_models_are_served_by_their_own_softmax_in_served_order() -> None:
    logits = np.array([[0.0, 2.0, 1.0]])  # positive, negative, neutral
    probs = served_probabilities(logits, ("positive", "negative", "neutral"), 1.0, NeutralBand())
    assert probs.argmax() == 0  # negative comes first in served order
    assert np.allclose(probs.sum(), 1.0)


def test_unknown_label_sets_are_refused() -> None:
    with pytest.raises(ValueError):
        served_probabilities(np.zeros((1, 2)), ("good", "bad"), 1.0, NeutralBand())
