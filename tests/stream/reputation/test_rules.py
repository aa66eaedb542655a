"""Unit tests for the pure alert rules and the cooldown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stream.config import AlertConfig
from stream.reputation.rules import (
    AlertKind,
    CategoryActivity,
    Finding,
    OpenAlert,
    ProductActivity,
    SentimentCounts,
    Severity,
    SubjectType,
    Thresholds,
    category_drop,
    complaint_surge,
    deduplicate,
    evaluate_rules,
    negative_spike,
    smoothed_ratio,
)

T = Thresholds(
    min_volume=20,
    negative_ratio=0.5,
    ratio_lift=2.0,
    complaint_min=10,
    complaint_lift=2.0,
    category_min_volume=50,
    category_drop=0.3,
    cooldown=timedelta(minutes=60),
)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_thresholds_come_from_the_alert_config():
    alerts = AlertConfig(
        alert_min_volume=20,
        alert_negative_ratio=0.5,
        alert_ratio_lift=2.0,
        alert_keyword_min=10,
        alert_keyword_lift=2.0,
        alert_category_min_volume=50,
        alert_category_drop=0.3,
        alert_cooldown_minutes=60,
    )
    assert Thresholds.from_config(alerts) == T
    assert Thresholds.from_config(alerts.model_copy(update={"alert_cooldown_minutes": 5})) == (
        Thresholds(**{**T.__dict__, "cooldown": timedelta(minutes=5)})
    )


def counts(neg: int, neu: int, pos: int) -> SentimentCounts:
    return SentimentCounts(negative=neg, neutral=neu, positive=pos)


def product(window: SentimentCounts, baseline: SentimentCounts, **kw) -> ProductActivity:
    return ProductActivity(product_id="p1", category="手机", window=window, baseline=baseline, **kw)


def test_counts_ratios():
    c = counts(2, 3, 5)
    assert c.total == 10
    assert c.negative_ratio == 0.2
    assert c.net_score == 0.3
    assert counts(0, 0, 0).negative_ratio == 0.0
    assert counts(0, 0, 0).net_score == 0.0


def test_smoothed_ratio_pulls_thin_history_to_prior():
    assert smoothed_ratio(0, 0, 0.2, 20) == 0.2
    assert smoothed_ratio(10, 10, 0.2, 10) == 0.6
    assert smoothed_ratio(0, 100, 0.0, 20) == 0.01  # floor


def test_spike_fires_with_figures():
    f = negative_spike(product(counts(24, 2, 4), counts(40, 20, 140)), 0.2, T)
    assert f is not None
    assert f.kind is AlertKind.NEGATIVE_SPIKE
    assert f.subject_type is SubjectType.PRODUCT and f.subject == "p1"
    assert f.figures["window_reviews"] == 30
    assert f.figures["window_negative"] == 24
    assert f.figures["negative_ratio"] == 0.8
    assert f.figures["baseline_ratio"] == 0.2  # (40 + 0.2*20) / (200 + 20)
    assert f.figures["lift"] == 4.0
    assert f.severity is Severity.CRITICAL  # lift >= 2 x required lift


def test_spike_needs_minimum_volume():
    # 3 negative reviews and no history: ratio 1.0, but below min volume.
    assert negative_spike(product(counts(3, 0, 0), counts(0, 0, 0)), 0.2, T) is None
    assert negative_spike(product(counts(19, 0, 0), counts(0, 0, 0)), 0.2, T) is None
    assert negative_spike(product(counts(20, 0, 0), counts(0, 0, 0)), 0.2, T) is not None


def test_spike_needs_lift_over_own_baseline():
    # A product that is always 60% negative is not spiking at 60%.
    usual = product(counts(18, 2, 10), counts(120, 20, 60))
    assert negative_spike(usual, 0.2, T) is None
    # Below the absolute ratio even with a big lift.
    low = product(counts(12, 0, 18), counts(2, 0, 198))
    assert negative_spike(low, 0.2, T) is None


def test_spike_warning_severity():
    f = negative_spike(product(counts(15, 0, 15), counts(40, 40, 120)), 0.2, T)
    assert f is not None
    assert f.figures["lift"] == 2.5
    assert f.severity is Severity.WARNING


def test_complaint_surge():
    p = product(
        counts(12, 3, 15),
        counts(20, 20, 160),
        window_complaint_reviews=12,
        baseline_complaint_reviews=6,
        top_complaints=(("漏水", 8), ("质量", 5)),
    )
    f = complaint_surge(p, 0.03, T)
    assert f is not None
    assert f.kind is AlertKind.COMPLAINT_SURGE
    assert f.figures["complaint_reviews"] == 12
    assert f.figures["complaint_share"] == 0.4
    assert f.figures["baseline_share"] == 0.03  # (6 + 0.03*20) / 220
    assert f.top_complaints == (("漏水", 8), ("质量", 5))
    assert f.severity is Severity.CRITICAL


def test_complaint_surge_gates():
    few = product(counts(9, 0, 21), counts(0, 0, 0), window_complaint_reviews=9)
    assert complaint_surge(few, 0.03, T) is None  # below the count
    thin = product(counts(12, 0, 0), counts(0, 0, 0), window_complaint_reviews=12)
    assert complaint_surge(thin, 0.03, T) is None  # below the volume
    usual = product(
        counts(12, 0, 18),
        counts(80, 0, 120),
        window_complaint_reviews=12,
        baseline_complaint_reviews=70,
    )
    assert complaint_surge(usual, 0.03, T) is None  # normal for this product


def test_category_drop():
    cat = CategoryActivity("手机", window=counts(40, 10, 50), baseline=counts(100, 100, 800))
    f = category_drop(cat, T)
    assert f is not None
    assert f.subject_type is SubjectType.CATEGORY and f.subject == "手机"
    assert f.figures["baseline_net_score"] == 0.7
    assert f.figures["window_net_score"] == 0.1
    assert f.figures["drop"] == 0.6
    assert f.severity is Severity.CRITICAL
    # Not enough volume on either side.
    assert category_drop(CategoryActivity("x", counts(40, 0, 5), counts(0, 0, 800)), T) is None
    assert category_drop(CategoryActivity("x", counts(30, 0, 10), counts(0, 0, 0)), T) is None
    # A small wobble.
    assert category_drop(CategoryActivity("x", counts(20, 0, 80), counts(10, 0, 90)), T) is None


def test_evaluate_rules_uses_pooled_prior():
    steady = [
        ProductActivity(f"s{i}", "书籍", counts(2, 1, 7), counts(20, 10, 70)) for i in range(49)
    ]
    turned = ProductActivity(
        "bad", "书籍", counts(25, 1, 4), counts(20, 10, 70), window_complaint_reviews=20
    )
    newcomer = ProductActivity("new", "书籍", counts(3, 0, 0), counts(0, 0, 0))
    findings = evaluate_rules([*steady, turned, newcomer], [], T)
    assert {(f.kind, f.subject) for f in findings} == {
        (AlertKind.NEGATIVE_SPIKE, "bad"),
        (AlertKind.COMPLAINT_SURGE, "bad"),
    }


def finding(kind=AlertKind.NEGATIVE_SPIKE, subject="p1", severity=Severity.WARNING) -> Finding:
    subject_type = SubjectType.CATEGORY if kind is AlertKind.CATEGORY_DROP else SubjectType.PRODUCT
    return Finding(kind, severity, subject_type, subject, "手机", {"lift": 3.0})


def open_alert(subject="p1", seen_ago=timedelta(minutes=5), kind=AlertKind.NEGATIVE_SPIKE):
    return OpenAlert("a1", kind, SubjectType.PRODUCT, subject, NOW - seen_ago, NOW - seen_ago)


def test_deduplicate_one_alert_per_subject_per_evaluation():
    d = deduplicate(
        [finding(AlertKind.COMPLAINT_SURGE), finding(AlertKind.NEGATIVE_SPIKE)], [], NOW, T.cooldown
    )
    assert [f.kind for f in d.new] == [AlertKind.NEGATIVE_SPIKE]
    # Critical beats kind priority.
    d = deduplicate(
        [
            finding(AlertKind.NEGATIVE_SPIKE),
            finding(AlertKind.COMPLAINT_SURGE, severity=Severity.CRITICAL),
        ],
        [],
        NOW,
        T.cooldown,
    )
    assert [f.kind for f in d.new] == [AlertKind.COMPLAINT_SURGE]


def test_deduplicate_cooldown():
    # Seen 5 minutes ago: the same incident continues, nothing new.
    d = deduplicate([finding()], [open_alert()], NOW, T.cooldown)
    assert d.new == []
    assert [(a.alert_id, f.subject) for a, f in d.continuing] == [("a1", "p1")]
    # Another kind on the same product is still the same incident.
    d = deduplicate([finding(AlertKind.COMPLAINT_SURGE)], [open_alert()], NOW, T.cooldown)
    assert d.new == [] and len(d.continuing) == 1
    # Quiet for longer than the cooldown: a new incident.
    d = deduplicate([finding()], [open_alert(seen_ago=timedelta(minutes=61))], NOW, T.cooldown)
    assert len(d.new) == 1 and d.continuing == []
    # Other subjects are independent; a category alert does not cover its products.
    d = deduplicate(
        [finding(subject="p2"), finding(AlertKind.CATEGORY_DROP, subject="p1")],
        [open_alert()],
        NOW,
        T.cooldown,
    )
    assert sorted((f.subject_type, f.subject) for f in d.new) == [
        (SubjectType.CATEGORY, "p1"),
        (SubjectType.PRODUCT, "p2"),
    ]


def test_deduplicate_uses_latest_open_alert():
    older = OpenAlert(
        "old",
        AlertKind.NEGATIVE_SPIKE,
        SubjectType.PRODUCT,
        "p1",
        NOW - timedelta(hours=3),
        NOW - timedelta(minutes=50),
    )
    newer = open_alert(seen_ago=timedelta(minutes=2))
    d = deduplicate([finding()], [older, newer], NOW, T.cooldown)
    assert [a.alert_id for a, _ in d.continuing] == ["a1"]
