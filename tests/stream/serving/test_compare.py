"""The shadow comparison and the promotion rules, on fixed cells."""

from __future__ import annotations

import pytest

from stream.serving.compare import PromotionRules, compare, decide_promotion
from stream.sink.shadow import ShadowCell

# 10 reviews: served labels, candidate labels, rating (0 = none), forward seconds each.
CELLS = [
    ShadowCell("positive", "positive", 5, 3, 0.003, 0.006),  # both right
    ShadowCell("neutral", "positive", 4, 2, 0.002, 0.004),  # only the candidate right
    ShadowCell("positive", "negative", 1, 1, 0.001, 0.002),  # only the candidate right
    ShadowCell("negative", "positive", 2, 1, 0.001, 0.002),  # only the served model right
    ShadowCell("negative", "negative", 3, 1, 0.001, 0.002),  # both wrong (3 is neutral)
    ShadowCell("negative", "negative", 0, 2, 0.002, 0.004),  # unrated
]


def test_figures_on_fixed_cells() -> None:
    c = compare(CELLS, candidate="cand", served="srv")
    assert (c.reviews, c.rated) == (10, 8)
    assert c.served.rating_agreement == pytest.approx(4 / 8)
    assert c.candidate.rating_agreement == pytest.approx(6 / 8)
    assert (c.candidate_only_right, c.served_only_right) == (3, 1)
    assert c.gain == pytest.approx(2 / 8)
    assert c.mcnemar_z == pytest.approx(2 / 2)
    assert c.agreement == pytest.approx(6 / 10)
    assert c.served.label_shares == {"negative": 0.4, "neutral": 0.2, "positive": 0.4}
    assert c.candidate.label_shares == {"negative": 0.4, "neutral": 0.0, "positive": 0.6}
    assert c.served.ms_per_review == pytest.approx(1.0)
    assert c.candidate.ms_per_review == pytest.approx(2.0)
    truth = c.rating_confusion["candidate"]  # rated label -> candidate label -> reviews
    assert truth["positive"] == {"negative": 0, "neutral": 0, "positive": 5}
    assert truth["negative"] == {"negative": 1, "neutral": 0, "positive": 1}
    assert c.rating_confusion["served"]["neutral"]["negative"] == 1
    assert c.to_dict()["gain"] == pytest.approx(0.25)


def test_nothing_compared_is_no_figures_and_no_promotion() -> None:
    c = compare([], candidate="cand", served="srv")
    assert (c.reviews, c.rated, c.gain, c.agreement, c.mcnemar_z) == (0, 0, None, None, None)
    decision = decide_promotion(c, PromotionRules(min_rated=1))
    assert not decision.promote
    assert decision.reasons == [
        "only 0 rated reviews compared (at least 1 needed)",
        "no rated review was scored by both models",
    ]


def test_promotes_a_better_candidate_with_enough_rated_reviews() -> None:
    decision = decide_promotion(compare(CELLS, candidate="c", served="s"), PromotionRules(8))
    assert decision.promote and decision.reasons == []
    data = decision.to_dict()
    assert data["promote"] is True and data["rules"] == {
        "min_rated": 8,
        "max_agreement_drop": 0.005,
    }
    assert data["candidate"]["version"] == "c" and data["compared"]["rated"] == 8


def test_refuses_too_few_rated_reviews() -> None:
    decision = decide_promotion(compare(CELLS, candidate="c", served="s"), PromotionRules(9))
    assert not decision.promote
    assert decision.reasons == ["only 8 rated reviews compared (at least 9 needed)"]


@pytest.mark.parametrize(("margin", "promote"), [(0.0, False), (0.24, False), (0.26, True)])
def test_a_worse_candidate_passes_only_within_the_margin(margin: float, promote: bool) -> None:
    # Swap the roles: the candidate is now the worse one, by 4 of 16 rated reviews.
    swapped = [
        ShadowCell(c.candidate, c.served, c.rating, 2 * c.reviews, c.served_seconds, 0.0)
        for c in CELLS
    ]
    comparison = compare(swapped, candidate="c", served="s")
    assert comparison.gain == pytest.approx(-0.25)
    decision = decide_promotion(comparison, PromotionRules(1, max_agreement_drop=margin))
    assert decision.promote is promote
    if not promote:
        assert (
            decision.reasons
            == [f"rating agreement 0.5000 vs served 0.7500 (drop 0.2500 > {margin})"]
            or "drop 0.1250" in decision.reasons[0]
        )
