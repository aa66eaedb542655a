"""The statistical decision behind every rate alert. Pure: numpy and scipy, no I/O.

A subject (a product or a category) is judged on several event-time windows at once (for
example the last 2, 5, 10 and 60 minutes). For each window we have ``hits`` of ``total``
reviews (negative reviews, or complaint reviews) and, from the history before that window,
the subject's own baseline ``base_hits`` of ``base_total``.

1. **Normal rate: a beta posterior, shrunk.** The subject's usual rate is
   ``Beta(base_hits + w * prior, base_misses + w * (1 - prior))``: its own history plus
   ``prior_weight`` (w) pseudo-reviews at the ``prior`` rate (a product's category, a
   category's shop-wide rate). A product with a long history is judged on its own; a
   product with three reviews of history almost entirely by its category. Rates drift over
   a day, so the posterior never counts more than ``max_weight`` reviews of certainty.
2. **Tolerance.** The null hypothesis is "the rate is at most the upper end of normal": the
   posterior's 90% quantile plus ``margin`` (an absolute rise that is accepted as drift).
   A thin or drifting history therefore tolerates more.
3. **Evidence.** The binomial tail probability of seeing ``hits`` or more of ``total`` under
   that null rate, as ``evidence = -ln P`` (nats of surprise): exact for any window size,
   so three reviews and three thousand are judged on the same scale.
4. **Decision.** A window fires when it has at least ``min_volume`` reviews and at least
   its required evidence; short windows are looked at more often and need more.
5. **Severity.** Critical when the rate rose by at least ``critical_effect`` (absolute) even
   at the lower end of a 90% confidence interval of the window rate: a large effect that is
   also well established. Warning otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betainc, betaincinv

# One-sided 90%: the upper end of a normal rate, the lower end of a window rate.
QUANTILE = 0.9
Z_LOWER = 1.2815515655446004
# Most reviews of certainty the normal rate gets, however long the history: rates drift
# over a day (chosen with bench.alerts; see the README).
MAX_BASELINE_WEIGHT = 300.0
# Evidence is capped here (a tail probability of about 1e-130).
MAX_EVIDENCE = 300.0


@dataclass(frozen=True)
class DetectorSettings:
    """The knobs of :func:`assess`; ``rules.RuleSettings.from_config`` maps the settings."""

    windows: tuple[int, ...] = (2, 5, 10, 60)
    evidence: tuple[float, ...] = (10.0, 10.0, 9.0, 8.0)
    min_volume: int = 8
    margin: float = 0.05
    prior_weight: float = 30.0
    critical_effect: float = 0.3
    max_weight: float = MAX_BASELINE_WEIGHT

    def __post_init__(self) -> None:
        if len(self.windows) != len(self.evidence) or not self.windows:
            raise ValueError("one required evidence per window")
        if list(self.windows) != sorted(set(self.windows)):
            raise ValueError("windows must be distinct and ascending")

    @property
    def longest(self) -> int:
        return self.windows[-1]


@dataclass(frozen=True)
class Assessment:
    """Per subject (rows) and window (columns) figures, and the verdict per subject."""

    rate: np.ndarray  # (S, W) hits / total in the window
    normal: np.ndarray  # (S, W) shrunk baseline rate (posterior mean)
    tolerated: np.ndarray  # (S, W) the null rate: upper end of normal plus the margin
    evidence: np.ndarray  # (S, W) nats
    effect_lower: np.ndarray  # (S, W) lower 90% bound of rate minus normal
    fired: np.ndarray  # (S,) bool: some window fired
    best: np.ndarray  # (S,) index of the window with the largest evidence / required
    critical: np.ndarray  # (S,) bool


def shrunk_rate(
    hits: np.ndarray, total: np.ndarray, prior: np.ndarray, weight: float
) -> np.ndarray:
    """``(hits + weight * prior) / (total + weight)``: own history pulled towards ``prior``."""
    return (hits + weight * prior) / (total + weight)


def normal_range(
    base_hits: np.ndarray,
    base_total: np.ndarray,
    prior: np.ndarray,
    weight: float,
    max_weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(posterior mean, posterior :data:`QUANTILE`) of the normal rate."""
    a = base_hits + weight * prior
    b = (base_total - base_hits) + weight * (1.0 - prior)
    scale = np.minimum(1.0, max_weight / np.maximum(a + b, 1e-12))
    a, b = np.maximum(a * scale, 1e-9), np.maximum(b * scale, 1e-9)
    return a / (a + b), betaincinv(a, b, QUANTILE)


def tail_evidence(hits: np.ndarray, total: np.ndarray, null_rate: np.ndarray) -> np.ndarray:
    """``-ln P(X >= hits)`` for ``X ~ Binomial(total, null_rate)``, in nats; 0 where the
    window rate is not above ``null_rate`` or there are no reviews."""
    hits = np.asarray(hits, dtype=float)
    total = np.asarray(total, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(total > 0, hits / np.maximum(total, 1.0), 0.0)
        # P(X >= k) = I_p(k, n - k + 1), the regularized incomplete beta function.
        tail = betainc(np.maximum(hits, 1.0), np.maximum(total - hits + 1.0, 1.0), null_rate)
        nats = -np.log(np.maximum(tail, 1e-300))
    above = (total > 0) & (hits > 0) & (rate > null_rate)
    return np.where(above, np.minimum(nats, MAX_EVIDENCE), 0.0)


def wilson_lower(hits: np.ndarray, total: np.ndarray, z: float = Z_LOWER) -> np.ndarray:
    """Lower Wilson bound of ``hits / total`` (0 without reviews)."""
    total_f = np.maximum(np.asarray(total, dtype=float), 1.0)
    p = np.asarray(hits, dtype=float) / total_f
    z2 = z * z
    centre = p + z2 / (2 * total_f)
    spread = z * np.sqrt(np.maximum(p * (1 - p) / total_f + z2 / (4 * total_f**2), 0.0))
    lower = (centre - spread) / (1 + z2 / total_f)
    return np.where(np.asarray(total) > 0, np.clip(lower, 0.0, 1.0), 0.0)


def assess(
    hits: np.ndarray,
    total: np.ndarray,
    base_hits: np.ndarray,
    base_total: np.ndarray,
    prior: np.ndarray,
    settings: DetectorSettings,
) -> Assessment:
    """Judge ``S`` subjects on ``W`` windows; every array is ``(S, W)`` (``prior`` may be
    ``(S, 1)``). ``base_*`` is each subject's history before that window's start."""
    hits = np.asarray(hits, dtype=float)
    total = np.asarray(total, dtype=float)
    normal, upper = normal_range(
        np.asarray(base_hits, dtype=float),
        np.asarray(base_total, dtype=float),
        np.asarray(prior, dtype=float),
        settings.prior_weight,
        settings.max_weight,
    )
    tolerated = np.clip(upper + settings.margin, 1e-9, 1 - 1e-9)
    evidence = tail_evidence(hits, total, tolerated)
    required = np.asarray(settings.evidence, dtype=float)
    enough = total >= settings.min_volume
    passes = enough & (evidence >= required)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(total > 0, hits / np.maximum(total, 1.0), 0.0)
    effect_lower = wilson_lower(hits, total) - normal
    score = np.where(enough, evidence / required, 0.0)
    best = np.argmax(np.where(passes, score, score - 1e9), axis=1)
    rows = np.arange(hits.shape[0])
    fired = passes.any(axis=1)
    critical = fired & (effect_lower[rows, best] >= settings.critical_effect)
    return Assessment(
        rate=rate,
        normal=normal,
        tolerated=tolerated,
        evidence=evidence,
        effect_lower=effect_lower,
        fired=fired,
        best=best,
        critical=critical,
    )
