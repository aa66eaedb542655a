"""ClickHouse reads of model health. Blocking: call from an executor.

The SQL runs unchanged on ClickHouse 18.16 and 26.x (no CTEs, no window functions,
timestamps as ``toDateTime('...', 'UTC')`` literals). Counts merge ``uniqExact`` states of
review_id and count each review once, even when two stored copies of it disagree (a batch
re-read by another model version, int8 scores that moved with the batch-mates, or copies
that ReplacingMergeTree has not merged yet): a review lives in one minute and one category,
so the union of a group's states is exact, and where copies land in different cells (a
sentiment, a bin) the review counts in the first one any copy has, in :func:`first_of`'s
order: the most negative sentiment (as ``stream.sink.store.RESOLVED_SENTIMENT_COUNTS`` and
the reputation views do) and the lowest bin. Token sums are sums, exact only while copies are
deduplicated on insert.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from model.labels import RATINGS, SENTIMENTS
from model.profile import CONFIDENCE_EDGES, TEXT_LENGTH_EDGES, Histogram, TrafficProfile
from stream.monitoring.rules import Feedback, ModelHealthFinding, MonitorWindow, WindowTraffic
from stream.sink.sql import datetime_literal as ts
from stream.sink.sql import quote
from stream.sink.values import as_utc

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


# Where copies of a review disagree, it counts under the first sentiment any copy has in
# this order (most negative first); SQL conditions of "one of the first i + 1".
SENTIMENT_ORDER: tuple[str, ...] = SENTIMENTS  # negative, neutral, positive
SENTIMENT_PREFIXES: tuple[str, ...] = ("sentiment = 'negative'", "sentiment != 'positive'")


def bin_prefixes(column: str, bins: int) -> tuple[str, ...]:
    """SQL conditions "the bin is one of the first i + 1" for a bin column (lowest first)."""
    return tuple(f"{column} <= {i}" for i in range(bins - 1))


def first_of_sql(prefixes: Sequence[str], where: str = "") -> str:
    """Distinct reviews whose copies reach each prefix of an ordered set of cells, then all
    of them (``where`` narrows every count): :func:`first_of` splits them into cells."""
    both = [f"{where} AND {p}" if where else p for p in prefixes]
    states = [f"uniqExactMergeIf(reviews, {c})" for c in both]
    states.append(f"uniqExactMergeIf(reviews, {where})" if where else "uniqExactMerge(reviews)")
    return ", ".join(states)


def first_of(cumulative: Sequence[int]) -> list[int]:
    """Reviews per cell, each counted once under the first cell any of its copies has, from
    the distinct counts of :func:`first_of_sql` (a growing prefix of the cells, then all)."""
    counts = [int(n) for n in cumulative]
    return [b - a for a, b in zip([0, *counts[:-1]], counts, strict=True)]


TRAFFIC_CONFIDENCE_PREFIXES = bin_prefixes("confidence_bin", len(TABLE_CONFIDENCE_EDGES))
TRAFFIC_LENGTH_PREFIXES = bin_prefixes("length_bin", len(TABLE_TEXT_LENGTH_EDGES))
TRAFFIC_CELL = "sentiment, confidence_bin, length_bin"


@dataclass
class TrafficCounts:
    """One category's distinct reviews per sentiment, confidence bin and length bin."""

    labels: list[int] = field(default_factory=lambda: [0] * len(SENTIMENT_ORDER))
    confidence: list[int] = field(default_factory=lambda: [0] * len(TABLE_CONFIDENCE_EDGES))
    length: list[int] = field(default_factory=lambda: [0] * len(TABLE_TEXT_LENGTH_EDGES))

    @property
    def reviews(self) -> int:
        return sum(self.labels)

    def add(self, other: TrafficCounts, sign: int = 1) -> None:
        for mine, theirs in zip(
            (self.labels, self.confidence, self.length),
            (other.labels, other.confidence, other.length),
            strict=True,
        ):
            for i, n in enumerate(theirs):
                mine[i] += sign * n


def traffic_where(
    start: datetime,
    end: datetime,
    model_version: str | None,
    categories: Sequence[str] | None = None,
    minutes: Sequence[datetime] | None = None,
) -> str:
    where = f"minute >= {ts(start)} AND minute < {ts(end)}{_version_filter(model_version)}"
    if categories is not None:
        where += f" AND category IN ({', '.join(quote(c) for c in categories)})"
    if minutes is not None:
        where += f" AND minute IN ({', '.join(ts(m) for m in minutes)})"
    return where


def traffic_cells_sql(where: str) -> str:
    """Distinct reviews per category and cell, and the token sums (a review whose copies
    disagree is in more than one cell)."""
    return f"""
SELECT category, {TRAFFIC_CELL}, uniqExactMerge(reviews) AS n,
       sumMerge(token_sum) AS tokens, sumMerge(unknown_token_sum) AS unknown
FROM {TRAFFIC_TABLE}
WHERE {where}
GROUP BY category, {TRAFFIC_CELL}
"""


def traffic_resolved_sql(where: str) -> str:
    """Per category: distinct reviews per sentiment, confidence bin and length bin, each
    review once (:func:`first_of_sql`). About ten sets per review instead of one: for the
    few minutes whose copies disagree only."""
    return f"""
SELECT category, {first_of_sql(SENTIMENT_PREFIXES)},
       {first_of_sql(TRAFFIC_CONFIDENCE_PREFIXES)}, {first_of_sql(TRAFFIC_LENGTH_PREFIXES)}
FROM {TRAFFIC_TABLE}
WHERE {where}
GROUP BY category
"""


def traffic_totals_sql(where: str) -> str:
    """Distinct reviews per category over all its cells."""
    return f"""
SELECT category, uniqExactMerge(reviews) FROM {TRAFFIC_TABLE} WHERE {where} GROUP BY category
"""


def traffic_overlap_sql(where: str) -> str:
    """The categories' minutes where the sum over cells of their distinct reviews exceeds
    the distinct reviews of all cells together: where copies of a review disagree."""
    return f"""
SELECT category, minute
FROM (
    SELECT category, minute, {TRAFFIC_CELL}, uniqExactMerge(reviews) AS n,
           uniqExactMergeState(reviews) AS state
    FROM {TRAFFIC_TABLE}
    WHERE {where}
    GROUP BY category, minute, {TRAFFIC_CELL}
)
GROUP BY category, minute
HAVING sum(n) > uniqExactMerge(state)
"""


def _cell_counts(
    ch: ClickHouse, where: str
) -> tuple[dict[str, TrafficCounts], dict[str, tuple[int, int]]]:
    counts: dict[str, TrafficCounts] = defaultdict(TrafficCounts)
    tokens: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for category, sentiment, confidence_bin, length_bin, n, tok, unk in ch.query(
        traffic_cells_sql(where)
    ):
        found = counts[category]
        found.labels[SENTIMENT_ORDER.index(sentiment)] += int(n)
        found.confidence[int(confidence_bin)] += int(n)
        found.length[int(length_bin)] += int(n)
        tokens[category] = (tokens[category][0] + int(tok), tokens[category][1] + int(unk))
    return counts, dict(tokens)


def _resolved_counts(ch: ClickHouse, where: str) -> dict[str, TrafficCounts]:
    sizes = (len(SENTIMENT_ORDER), len(TABLE_CONFIDENCE_EDGES))
    return {
        category: TrafficCounts(
            first_of(values[: sizes[0]]),
            first_of(values[sizes[0] : sum(sizes)]),
            first_of(values[sum(sizes) :]),
        )
        for category, *values in ch.query(traffic_resolved_sql(where))
    }


def read_traffic_counts(
    ch: ClickHouse, start: datetime, end: datetime, model_version: str | None = None
) -> tuple[dict[str, TrafficCounts], dict[str, tuple[int, int]]]:
    """Per category in ``[start, end)``: each review counted once, and (tokens, unknown
    tokens). Counted per cell, as cheap as the table allows; then, only where copies of a
    review disagree (categories, then their minutes), those minutes are counted again
    resolved and replace their cell counts."""
    where = traffic_where(start, end, model_version)
    counts, tokens = _cell_counts(ch, where)
    dirty = [
        category
        for category, total in ch.query(traffic_totals_sql(where))
        if counts[category].reviews > int(total)
    ]
    if dirty:
        pairs = ch.query(traffic_overlap_sql(traffic_where(start, end, model_version, dirty)))
        narrow = traffic_where(
            start,
            end,
            model_version,
            sorted({row[0] for row in pairs}),
            sorted({as_utc(row[1]) for row in pairs}),
        )
        for category, cells in _cell_counts(ch, narrow)[0].items():
            counts[category].add(cells, -1)
        for category, resolved in _resolved_counts(ch, narrow).items():
            counts[category].add(resolved)
    return dict(counts), tokens


def read_traffic(
    ch: ClickHouse, start: datetime, end: datetime, model_version: str | None = None
) -> dict[str, WindowTraffic]:
    """Each category's traffic profile in ``[start, end)`` (of one model version, or all:
    a review classified by two versions counts once)."""
    counts, token_sums = read_traffic_counts(ch, start, end, model_version)
    found = {}
    for category, found_counts in counts.items():
        reviews = found_counts.reviews
        if not reviews:
            continue
        tokens, unknown = token_sums.get(category, (0, 0))
        profile = TrafficProfile(
            reviews=reviews,
            label_shares={
                label: n / reviews
                for label, n in zip(SENTIMENT_ORDER, found_counts.labels, strict=True)
            },
            confidence=Histogram.of_counts(TABLE_CONFIDENCE_EDGES, found_counts.confidence),
            unknown_token_share=unknown / tokens if tokens else 0.0,
            text_length=Histogram.of_counts(TABLE_TEXT_LENGTH_EDGES, found_counts.length),
        )
        found[category] = WindowTraffic(profile=profile, tokens=tokens)
    return found


def feedback_sql(
    window: MonitorWindow, by: str = "category", model_version: str | None = None
) -> str:
    """Distinct rated reviews per ``by`` (category or model_version), predicted and rated
    label, in the window and in the baseline before it."""
    if by not in ("category", "model_version"):
        raise ValueError(f"feedback is grouped by category or model_version, not {by!r}")
    return f"""
SELECT {by}, rated,
       {first_of_sql(SENTIMENT_PREFIXES, f"minute >= {ts(window.start)}")},
       {first_of_sql(SENTIMENT_PREFIXES, f"minute < {ts(window.start)}")}
FROM {FEEDBACK_TABLE}
WHERE minute >= {ts(window.baseline_start)} AND minute < {ts(window.end)}\
{_version_filter(model_version)}
GROUP BY {by}, rated
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
    size = len(SENTIMENT_ORDER)
    for key, rated, *values in ch.query(feedback_sql(window, by, model_version)):
        for side, cumulative in zip(sides, (values[:size], values[size:]), strict=True):
            for predicted, n in zip(SENTIMENT_ORDER, first_of(cumulative), strict=True):
                if n:
                    side[key][(predicted, rated)] = n
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
SELECT model_version, category, rated, {first_of_sql(SENTIMENT_PREFIXES)}
FROM {FEEDBACK_TABLE}
WHERE minute >= {ts(start)} AND minute < {ts(end)}
GROUP BY model_version, category, rated
"""


def read_confusion(
    ch: ClickHouse, start: datetime, end: datetime
) -> dict[tuple[str, str], Feedback]:
    """Rating feedback per (model_version, category) in ``[start, end)``."""
    cells: dict[tuple[str, str], dict[tuple[str, str], int]] = defaultdict(dict)
    for version, category, rated, *cumulative in ch.query(confusion_sql(start, end)):
        for predicted, n in zip(SENTIMENT_ORDER, first_of(cumulative), strict=True):
            if n:
                cells[(version, category)][(predicted, rated)] = n
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
