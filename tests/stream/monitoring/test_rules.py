"""Model-health rules on fixed figures: when model_drift and feedback_drop fire and when they
do not, their severity, figures and messages, and their review.alerts events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

import schemas
from model.profile import (
    CONFIDENCE_EDGES,
    TEXT_LENGTH_EDGES,
    Histogram,
    TrafficProfile,
    histogram_psi,
    label_psi,
)
from stream.config import MonitorConfig
from stream.monitoring.alerts import health_alert_id, model_health_event
from stream.monitoring.rules import (
    CRITICAL,
    FEEDBACK_DROP,
    MODEL_DRIFT,
    WARNING,
    Feedback,
    MonitorWindow,
    WindowTraffic,
    drift_finding,
    evaluate_health,
    feedback_finding,
)

NOW = datetime(2026, 11, 27, 12, 34, 56, tzinfo=UTC)
CONFIG = MonitorConfig()
WINDOW = MonitorWindow.ending_at(NOW, 60, 24)

CONFIDENCE = (0, 0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.15, 0, 0, 0)
LENGTH = (0.04, 0.18, 0.35, 0.24, 0.12, 0.06, 0.01)
REFERENCE = TrafficProfile(
    reviews=6000,
    label_shares={"negative": 0.45, "neutral": 0.08, "positive": 0.47},
    confidence=Histogram(CONFIDENCE_EDGES, CONFIDENCE),
    unknown_token_share=0.0004,
    text_length=Histogram(TEXT_LENGTH_EDGES, LENGTH),
    agreement=0.88,
)


def live(
    reviews: int = 500,
    labels: tuple[float, float, float] = (0.45, 0.08, 0.47),
    confidence: tuple[float, ...] = CONFIDENCE,
    unknown: float = 0.0004,
    length: tuple[float, ...] = LENGTH,
    tokens: int = 20_000,
) -> WindowTraffic:
    profile = TrafficProfile(
        reviews=reviews,
        label_shares=dict(zip(("negative", "neutral", "positive"), labels, strict=True)),
        confidence=Histogram(CONFIDENCE_EDGES, confidence),
        unknown_token_share=unknown,
        text_length=Histogram(TEXT_LENGTH_EDGES, length),
    )
    return WindowTraffic(profile=profile, tokens=tokens)


def feedback(agreeing: int, total: int, neutral_predicted: int = 0) -> Feedback:
    """``total`` reviews rated clearly (half 1-2, half 4-5 stars): ``agreeing`` of them
    predicted as rated, ``neutral_predicted`` served neutral, the rest the opposite label."""
    wrong = total - agreeing - neutral_predicted
    cells = {
        ("positive", "positive"): agreeing // 2,
        ("negative", "negative"): agreeing - agreeing // 2,
        ("neutral", "positive"): neutral_predicted,
        ("negative", "positive"): wrong,
    }
    return Feedback({cell: n for cell, n in cells.items() if n})


# --- the window -------------------------------------------------------------------------------


def test_the_window_is_minute_aligned_and_includes_the_current_minute() -> None:
    assert WINDOW.end == datetime(2026, 11, 27, 12, 35, tzinfo=UTC)
    assert WINDOW.start == datetime(2026, 11, 27, 11, 35, tzinfo=UTC)
    assert WINDOW.baseline_start == datetime(2026, 11, 26, 11, 35, tzinfo=UTC)
    assert WINDOW.minutes == 60


# --- feedback counts --------------------------------------------------------------------------


def test_feedback_figures_of_a_fixed_confusion() -> None:
    f = Feedback(
        {
            ("positive", "positive"): 50,
            ("negative", "negative"): 30,
            ("neutral", "neutral"): 5,
            ("neutral", "positive"): 10,
            ("positive", "negative"): 3,
            ("negative", "neutral"): 2,
        }
    )
    assert f.rated == 100 and f.agreeing == 85 and f.agreement == 0.85
    assert f.clear_rated == 93 and f.clear_agreeing == 80
    assert f.clear_agreement == pytest.approx(80 / 93)
    assert f.neutral_but_rated_clear == 10
    assert Feedback().agreement == 0.0 and Feedback().clear_agreement == 0.0


# --- model_drift ------------------------------------------------------------------------------


def test_traffic_like_the_reference_does_not_drift() -> None:
    assert drift_finding("手机", live(), REFERENCE, CONFIG, WINDOW) is None


SHIFTED_LABELS = (0.15, 0.05, 0.80)


def test_a_shift_in_predicted_labels_against_the_categorys_own_traffic_is_drift() -> None:
    traffic = live(labels=SHIFTED_LABELS)
    before = live(reviews=3000)  # the label shares of the reference
    found = drift_finding("手机", traffic, REFERENCE, CONFIG, WINDOW, "v1", before)
    assert found is not None and found.kind == MODEL_DRIFT and found.reasons == ("label_psi",)
    expected = label_psi(before.profile.label_shares, traffic.profile.label_shares)
    assert found.figures["label_psi"] == pytest.approx(expected, abs=1e-4)
    assert found.figures["baseline_reviews"] == 3000
    # 0.3 ln 3 + 0.03 ln 1.6 + 0.33 ln(0.8 / 0.47) >= 2 x 0.2: critical
    assert expected == pytest.approx(0.5192, abs=1e-4)
    assert found.severity == CRITICAL
    assert found.subject_type == "category" and found.subject == "手机"
    assert found.message.startswith(
        "category 手机: traffic drifted from model v1's overall reference (手机 has none of "
        "its own) in the last 60 min (500 reviews): label PSI 0.52 against the 3000 reviews "
        "before"
    )


def test_a_class_mix_unlike_the_balanced_validation_split_is_not_drift() -> None:
    """Mostly positive traffic, as a shop's is, against the card's balanced validation shares:
    the label PSI is large but measures the shop, not the model; it is not judged against the
    card, only against the category's own earlier traffic (with enough of it)."""
    traffic = live(labels=SHIFTED_LABELS)
    assert drift_finding("手机", traffic, REFERENCE, CONFIG, WINDOW) is None
    assert drift_finding("手机", traffic, REFERENCE, CONFIG, WINDOW, None, traffic) is None
    few = live(reviews=199)  # a baseline under monitor_min_reviews is not compared with
    assert drift_finding("手机", traffic, REFERENCE, CONFIG, WINDOW, None, few) is None
    # Reported for reading on any finding: here one on the neutral share.
    unsure = live(labels=(0.1, 0.2, 0.7))
    found = drift_finding("手机", unsure, REFERENCE, CONFIG, WINDOW)
    assert found is not None and found.reasons == ("neutral_share",)
    assert found.figures["label_psi_reference"] == pytest.approx(
        label_psi(REFERENCE.label_shares, unsure.profile.label_shares), abs=1e-4
    )
    assert "label_psi" not in found.figures and found.figures["baseline_reviews"] == 0


def test_an_unseen_domain_raises_neutral_share_unknown_tokens_and_confidence() -> None:
    traffic = live(
        labels=(0.36, 0.22, 0.42),
        confidence=(0, 0, 0.08, 0.12, 0.14, 0.15, 0.15, 0.14, 0.12, 0.1, 0, 0, 0),
        unknown=0.015,
    )
    found = drift_finding("外卖", traffic, REFERENCE, CONFIG, WINDOW)
    assert found is not None
    assert set(found.reasons) == {"neutral_share", "unknown_token_share", "confidence_psi"}
    assert found.figures["neutral_share"] == 0.22
    assert found.figures["reference_neutral_share"] == 0.08
    assert found.figures["unknown_token_share"] == 0.015
    assert found.figures["confidence_psi"] == pytest.approx(
        histogram_psi(REFERENCE.confidence, traffic.profile.confidence), abs=1e-4
    )
    assert "neutral share 22% (reference 8.0%)" in found.message
    assert "unknown tokens 1.5% (reference 0.0%)" in found.message
    assert found.figures["confidence_psi"] == pytest.approx(0.3354, abs=1e-4)
    # rises of 0.14 (< 2 x 0.1) and 0.0146 (< 2 x 0.01), confidence PSI under 2 x 0.25
    assert found.severity == WARNING


def test_drift_needs_volume() -> None:
    few, enough = (live(reviews=n, labels=(0.36, 0.25, 0.39)) for n in (199, 200))
    assert drift_finding("手机", few, REFERENCE, CONFIG, WINDOW) is None
    assert drift_finding("手机", enough, REFERENCE, CONFIG, WINDOW)


def test_unknown_tokens_are_not_judged_when_the_window_counted_none() -> None:
    traffic = live(unknown=0.0, tokens=0)
    found = drift_finding("手机", traffic, REFERENCE, CONFIG, WINDOW)
    assert found is None
    high = live(unknown=0.5, tokens=0)  # cannot happen, but shows the check is skipped
    assert drift_finding("手机", high, REFERENCE, CONFIG, WINDOW) is None


def test_histograms_with_other_bins_are_skipped_not_misread() -> None:
    other = TrafficProfile(
        reviews=REFERENCE.reviews,
        label_shares=REFERENCE.label_shares,
        confidence=Histogram((0.0, 0.5), (0.5, 0.5)),
        unknown_token_share=REFERENCE.unknown_token_share,
        text_length=Histogram((0.0, 50.0), (0.5, 0.5)),
    )
    found = drift_finding("手机", live(labels=(0.36, 0.25, 0.39)), other, CONFIG, WINDOW)
    assert found is not None
    assert "confidence_psi" not in found.figures and "length_psi" not in found.figures


def test_thresholds_come_from_the_settings() -> None:
    traffic = live(labels=(0.35, 0.08, 0.57))  # label PSI ~0.04 against the one before
    before = live()
    assert drift_finding("手机", traffic, REFERENCE, CONFIG, WINDOW, None, before) is None
    strict = MonitorConfig(monitor_label_psi=0.03)
    found = drift_finding("手机", traffic, REFERENCE, strict, WINDOW, None, before)
    assert found is not None and found.figures["threshold_label_psi"] == 0.03


# --- feedback_drop ----------------------------------------------------------------------------


def test_agreement_at_its_baseline_does_not_fire() -> None:
    assert (
        feedback_finding("手机", feedback(88, 100), feedback(880, 1000), REFERENCE, CONFIG, WINDOW)
        is None
    )


def test_a_fall_against_the_baseline_fires() -> None:
    found = feedback_finding(
        "手机", feedback(150, 200), feedback(900, 1000), None, CONFIG, WINDOW, "v1"
    )
    assert found is not None and found.kind == FEEDBACK_DROP
    assert found.reasons == ("baseline",)
    assert found.figures["clear_agreement"] == 0.75
    assert found.figures["baseline_agreement"] == 0.9
    assert found.figures["drop"] == 0.15 and found.severity == WARNING
    assert found.message == (
        "category 手机: model v1 agrees with 75% of clear ratings in the last 60 min "
        "(200 rated 1-2 or 4-5 stars), 15 points below the category's baseline 90%"
    )


def test_a_new_category_is_compared_with_the_cards_validation_agreement() -> None:
    served_neutral = feedback(130, 200, neutral_predicted=44)
    found = feedback_finding("外卖", served_neutral, None, REFERENCE, CONFIG, WINDOW)
    assert found is not None and found.reasons == ("reference",)
    assert found.figures["drop"] == pytest.approx(0.88 - 0.65)
    assert found.figures["neutral_but_rated_clear"] == 44
    assert found.severity == CRITICAL  # 23 points >= 2 x 10
    assert "below the model card's validation agreement 88%" in found.message


def test_the_larger_drop_counts() -> None:
    found = feedback_finding(
        "手机",
        feedback(70, 100),
        feedback(750, 1000),
        replace(REFERENCE, agreement=0.9),
        CONFIG,
        WINDOW,
    )
    assert found is not None and found.reasons == ("reference",)
    assert found.figures["baseline_agreement"] == 0.75
    assert found.figures["reference_agreement"] == 0.9


def test_feedback_needs_rated_volume_in_the_window_and_the_baseline() -> None:
    assert (
        feedback_finding("手机", feedback(50, 99), feedback(900, 1000), None, CONFIG, WINDOW)
        is None
    )
    thin_baseline = feedback(95, 99)
    assert feedback_finding("手机", feedback(50, 100), thin_baseline, None, CONFIG, WINDOW) is None
    assert feedback_finding("手机", feedback(50, 100), None, None, CONFIG, WINDOW) is None


def test_three_star_ratings_are_not_clear_ratings() -> None:
    # 100 reviews rated 3 stars, all served positive: no clear rating, nothing to judge.
    neutral_rated = Feedback({("positive", "neutral"): 100})
    assert neutral_rated.rated == 100 and neutral_rated.clear_rated == 0
    assert feedback_finding("手机", neutral_rated, None, REFERENCE, CONFIG, WINDOW) is None


# --- everything together ----------------------------------------------------------------------


def test_evaluate_health_over_categories() -> None:
    traffic = {"手机": live(), "外卖": live(labels=(0.36, 0.25, 0.39)), "书籍": live(reviews=10)}
    window_feedback = {"手机": feedback(176, 200), "外卖": feedback(130, 200)}
    found = evaluate_health(traffic, window_feedback, {}, REFERENCE, CONFIG, WINDOW, "v1")
    assert [(f.category, f.kind) for f in found] == [("外卖", MODEL_DRIFT), ("外卖", FEEDBACK_DROP)]
    assert all(f.model_version == "v1" for f in found)


def test_without_a_reference_only_the_baseline_can_fire() -> None:
    traffic = {"外卖": live(labels=(0.36, 0.25, 0.39))}
    window_feedback = {"外卖": feedback(130, 200), "手机": feedback(150, 200)}
    baseline = {"手机": feedback(900, 1000)}
    found = evaluate_health(traffic, window_feedback, baseline, None, CONFIG, WINDOW)
    assert [(f.category, f.kind, f.reasons) for f in found] == [
        ("手机", FEEDBACK_DROP, ("baseline",))
    ]


# --- events -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [MODEL_DRIFT, FEEDBACK_DROP])
def test_findings_make_valid_alert_events(kind: str) -> None:
    if kind == MODEL_DRIFT:
        found = drift_finding("外卖", live(labels=(0.36, 0.25, 0.39)), REFERENCE, CONFIG, WINDOW)
    else:
        found = feedback_finding("外卖", feedback(130, 200), None, REFERENCE, CONFIG, WINDOW)
    assert found is not None
    event = model_health_event(found, NOW, ["r2", "r1"])
    schemas.validator("quality_alert", 1).validate(event)
    assert set(event) == set(schemas.load_schema("quality_alert", 1)["required"])
    assert event["kind"] == kind and event["subject_type"] == "category"
    assert event["subject"] == event["category"] == "外卖"
    assert event["window_start"] == "2026-11-27T11:35:00Z"
    assert event["baseline_start"] == "2026-11-26T11:35:00Z"
    assert event["raised_at"] == "2026-11-27T12:34:56Z"
    assert event["sample_review_ids"] == ["r2", "r1"] and event["top_complaints"] == []
    assert event["message"] == found.message and event["figures"] == found.figures
    assert event["alert_id"] == health_alert_id(found)
    assert model_health_event(found, NOW)["alert_id"] == event["alert_id"]  # deterministic


# --- per-category references ------------------------------------------------------------------


UNSURE = (0, 0, 0.08, 0.12, 0.14, 0.15, 0.15, 0.14, 0.12, 0.1, 0, 0, 0)
SHIFTED = live(labels=(0.36, 0.25, 0.39), confidence=UNSURE).profile
WITH_CATEGORIES = replace(REFERENCE, categories={"手机": replace(SHIFTED, agreement=0.7)})


def test_a_known_category_is_compared_with_its_own_reference() -> None:
    traffic = live(labels=(0.36, 0.25, 0.39), confidence=UNSURE)
    assert drift_finding("手机", traffic, WITH_CATEGORIES, CONFIG, WINDOW) is None
    found = drift_finding("外卖", traffic, WITH_CATEGORIES, CONFIG, WINDOW, "v1")
    assert found is not None and found.figures["category_reference"] == 0
    assert "from model v1's overall reference (外卖 has none of its own)" in found.message
    back = drift_finding("手机", live(), WITH_CATEGORIES, CONFIG, WINDOW, "v1")
    assert back is not None and back.figures["category_reference"] == 1
    assert back.figures["reference_reviews"] == 500
    assert "from model v1's reference for 手机 in the last 60 min" in back.message


def test_feedback_is_compared_with_the_categorys_validation_agreement() -> None:
    # 手机's own validation agreement is 0.7: 65% is within the threshold of it ...
    assert (
        feedback_finding("手机", feedback(130, 200), None, WITH_CATEGORIES, CONFIG, WINDOW) is None
    )
    # ... while another category is held to the whole's 0.88.
    found = feedback_finding("外卖", feedback(130, 200), None, WITH_CATEGORIES, CONFIG, WINDOW)
    assert found is not None and found.figures["reference_agreement"] == 0.88
    low = feedback_finding("手机", feedback(100, 200), None, WITH_CATEGORIES, CONFIG, WINDOW)
    assert low is not None and "validation agreement on 手机 70%" in low.message
