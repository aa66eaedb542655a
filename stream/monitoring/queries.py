"""ClickHouse reads of model health. Blocking: call from an executor.

The SQL runs unchanged on ClickHouse 18.16 and 26.x (no CTEs, no window functions,
timestamps as ``toDateTime('...', 'UTC')`` literals). Counts merge ``uniqExact`` states of
review_id, so they are exact after duplicate delivery: every review lives in one minute and,
per table, in one group of the keys.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from model.labels import RATINGS, SENTIMENTS
from model.profile import CONFIDENCE_EDGES, TEXT_LENGTH_EDGES, Histogram, TrafficProfile
from stream.monitoring.rules import Feedback, ModelHealthFinding, MonitorWindow, WindowTraffic
from stream.sink.sql import datetime_literal as ts
from stream.sink.sql import quote

if TYPE_CHECKING:
    from stream.sink.backend import ClickHouse

FEEDBACK_TABLE = "feedback_minute"
TRAFFIC_TABLE = "traffic_minute"
REVIEWS_TABLE = "reviews"

# The bins traffic_minute's view computes (migration 0022): model.profile's edges.
TABLE_CONFIDENCE_EDGES = CONFIDENCE_EDGES
TABLE_TEXT_LENGTH_EDGES = TEXT_LENGTH_EDGES


def rated_label_sql(rating: str) -> str:
    """SQL of the label a star rating means (``model.labels.RATINGS``); '' for no rating."""
    branches = ", ".join(
        f"{rating} IN ({', '.join(str(stars) for stars in ratings)}), {quote(label)}"
        for label, ratings in RATINGS.items()
    )
    return f"multiIf({branches}, '')"


def _version_filter(model_version: str | None) -> str:
    return "" if model_version is None else f" AND model_version = {quote(model_version)}"


def traffic_sql(start: datetime, end: datetime, model_version: str | None = None) -> str:
    """Distinct reviews and token sums per category, sentiment and bins in ``[start, end)``."""
    return f"""
SELECT category, sentiment, confidence_bin, length_bin, uniqExactMerge(reviews) AS n,
       sumMerge(token_sum) AS tokens, sumMerge(unknown_token_sum) AS unknown
FROM {TRAFFIC_TABLE}
WHERE minute >= {ts(start)} AND minute < {ts(end)}{_version_filter(model_version)}
GROUP BY category, sentiment, confidence_bin, length_bin
"""


def read_traffic(
    ch: ClickHouse, start: datetime, end: datetime, model_version: str | None = None
) -> dict[str, WindowTraffic]:
    """Each category's traffic profile in ``[start, end)`` (of one model version, or all)."""
    labels: dict[str, dict[str, int]] = defaultdict(dict)
    confidence: dict[str, list[int]] = defaultdict(lambda: [0] * len(TABLE_CONFIDENCE_EDGES))
    length: dict[str, list[int]] = defaultdict(lambda: [0] * len(TABLE_TEXT_LENGTH_EDGES))
    tokens: dict[str, int] = defaultdict(int)
    unknown: dict[str, int] = defaultdict(int)
    for category, sentiment, confidence_bin, length_bin, n, tok, unk in ch.query(
        traffic_sql(start, end, model_version)
    ):
        n = int(n)
        labels[category][sentiment] = labels[category].get(sentiment, 0) + n
        confidence[category][int(confidence_bin)] += n
        length[category][int(length_bin)] += n
        tokens[category] += int(tok)
        unknown[category] += int(unk)
    found = {}
    for category, counts in labels.items():
        reviews = sum(counts.values())
        profile = TrafficProfile(
            reviews=reviews,
            label_shares={label: counts.get(label, 0) / reviews for label in SENTIMENTS},
            confidence=Histogram.of_counts(TABLE_CONFIDENCE_EDGES, confidence[category]),
            unknown_token_share=unknown[category] / tokens[category] if tokens[category] else 0.0,
            text_length=Histogram.of_counts(TABLE_TEXT_LENGTH_EDGES, length[category]),
        )
        found[category] = WindowTraffic(profile=profile, tokens=tokens[category])
    return found


def feedback_sql(
    window: MonitorWindow, by: str = "category", model_version: str | None = None
) -> str:
    """Distinct rated reviews per ``by`` (category or model_version), predicted and rated
    label, in the window and in the baseline before it."""
    if by not in ("category", "model_version"):
        raise ValueError(f"feedback is grouped by category or model_version, not {by!r}")
    return f"""
SELECT {by}, sentiment, rated,
       uniqExactMergeIf(reviews, minute >= {ts(window.start)}) AS in_window,
       uniqExactMergeIf(reviews, minute < {ts(window.start)}) AS in_baseline
FROM {FEEDBACK_TABLE}
WHERE minute >= {ts(window.baseline_start)} AND minute < {ts(window.end)}\
{_version_filter(model_version)}
GROUP BY {by}, sentiment, rated
"""


@dataclass(frozen=True)
class FeedbackWindows:
    """Rating feedback per key (a category or a model version), window and baseline."""

    window: dict[str, Feedback]
    baseline: dict[str, Feedback]


def read_feedback(
    ch: ClickHouse,
    window: MonitorWindow,
    by: str = "category",
    model_version: str | None = None,
) -> FeedbackWindows:
    """Confusion matrices per ``by`` in the window and in its baseline (keys with no rated
    review on a side are absent from that side)."""
    sides: tuple[dict[str, dict[tuple[str, str], int]], ...] = (
        defaultdict(dict),
        defaultdict(dict),
    )
    for key, predicted, rated, in_window, in_baseline in ch.query(
        feedback_sql(window, by, model_version)
    ):
        for side, n in zip(sides, (in_window, in_baseline), strict=True):
            if int(n):
                side[key][(predicted, rated)] = int(n)
    return FeedbackWindows(
        window={key: Feedback(confusion) for key, confusion in sides[0].items()},
        baseline={key: Feedback(confusion) for key, confusion in sides[1].items()},
    )


def sample_review_ids_sql(finding: ModelHealthFinding, limit: int) -> str:
    """The newest reviews of the finding's category in its window that show the problem:
    for ``feedback_drop`` rated reviews whose prediction is not the rating's label, for
    ``model_drift`` neutral or unknown-token reviews first."""
    window = finding.window
    where = (
        f"category = {quote(finding.category)} AND created_at >= {ts(window.start)} "
        f"AND created_at < {ts(window.end)}{_version_filter(finding.model_version)}"
    )
    if finding.kind == "feedback_drop":
        rated = rated_label_sql("ifNull(rating, 0)")
        where += f" AND isNotNull(rating) AND toString(sentiment) != {rated}"
        order = "created_at DESC, review_id"
    else:
        order = "(sentiment = 'neutral' OR unknown_tokens > 0) DESC, created_at DESC, review_id"
    return f"""
SELECT review_id FROM {REVIEWS_TABLE} FINAL
WHERE {where}
ORDER BY {order}
LIMIT {int(limit)}
"""


def sample_review_ids(ch: ClickHouse, finding: ModelHealthFinding, limit: int) -> list[str]:
    if limit <= 0:
        return []
    return [row[0] for row in ch.query(sample_review_ids_sql(finding, limit))]


def confusion_sql(start: datetime, end: datetime) -> str:
    return f"""
SELECT model_version, category, sentiment, rated, uniqExactMerge(reviews) AS n
FROM {FEEDBACK_TABLE}
WHERE minute >= {ts(start)} AND minute < {ts(end)}
GROUP BY model_version, category, sentiment, rated
"""


def read_confusion(
    ch: ClickHouse, start: datetime, end: datetime
) -> dict[tuple[str, str], Feedback]:
    """Rating feedback per (model_version, category) in ``[start, end)``."""
    cells: dict[tuple[str, str], dict[tuple[str, str], int]] = defaultdict(dict)
    for version, category, predicted, rated, n in ch.query(confusion_sql(start, end)):
        cells[(version, category)][(predicted, rated)] = int(n)
    return {key: Feedback(confusion) for key, confusion in cells.items()}


def versions_in(ch: ClickHouse, start: datetime, end: datetime) -> list[str]:
    """The model versions that classified traffic in ``[start, end)``, most reviews first."""
    rows = ch.query(
        f"""
SELECT model_version, uniqExactMerge(reviews) AS n FROM {TRAFFIC_TABLE}
WHERE minute >= {ts(start)} AND minute < {ts(end)}
GROUP BY model_version ORDER BY n DESC, model_version
"""
    )
    return [row[0] for row in rows]
