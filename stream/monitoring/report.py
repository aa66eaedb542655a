"""The model section of ``reviewpulse report``: rating feedback, the confusion of prediction
and rating, and drift of the served model's traffic against its card's reference. Blocking
ClickHouse reads; rows come back as dicts (``stream.reputation.reports.format_table`` prints
them)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from model.card import ModelCard
from model.labels import SENTIMENTS
from model.profile import label_psi
from model.registry import resolve_model_dir
from stream.monitoring.queries import read_confusion, read_traffic
from stream.monitoring.rules import Feedback, drift_checks

if TYPE_CHECKING:
    from stream.config import ModelConfig, MonitorConfig
    from stream.sink.backend import ClickHouse

Section = tuple[list[dict[str, Any]], tuple[str, ...]]

FEEDBACK_COLUMNS = (
    "model_version",
    "category",
    "rated",
    "agreement",
    "clear_rated",
    "clear_agreement",
    "neutral_but_rated_clear",
)
CONFUSION_COLUMNS = ("model_version", "predicted", *(f"rated_{label}" for label in SENTIMENTS))
DRIFT_COLUMNS = (
    "category",
    "reviews",
    "label_psi",
    "label_psi_card",
    "confidence_psi",
    "length_psi",
    "neutral_share",
    "unknown_token_share",
    "reference",
    "drifted",
)


def served_card(model: ModelConfig) -> ModelCard | str:
    """The card of the configured model version, or why there is none."""
    try:
        directory = resolve_model_dir(model.model_registry, model.model_name, model.model_version)
        return ModelCard.read(directory)
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"no model card ({error})"


def feedback_rows(feedback: dict[tuple[str, str], Feedback], limit: int) -> list[dict[str, Any]]:
    """Per model version and category, most rated first."""
    rows = [
        {
            "model_version": version,
            "category": category,
            "rated": f.rated,
            "agreement": f.agreement,
            "clear_rated": f.clear_rated,
            "clear_agreement": f.clear_agreement if f.clear_rated else None,
            "neutral_but_rated_clear": f.neutral_but_rated_clear,
        }
        for (version, category), f in feedback.items()
    ]
    rows.sort(key=lambda row: (-row["rated"], row["model_version"], row["category"]))
    return rows[:limit]


def confusion_rows(feedback: dict[tuple[str, str], Feedback]) -> list[dict[str, Any]]:
    """Per model version, one row per predicted label: how those reviews were rated."""
    cells: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for (version, _), f in feedback.items():
        for cell, n in f.confusion.items():
            cells[version][cell] += n
    return [
        {
            "model_version": version,
            "predicted": predicted,
            **{f"rated_{rated}": cells[version][(predicted, rated)] for rated in SENTIMENTS},
        }
        for version in sorted(cells)
        for predicted in SENTIMENTS
    ]


def drift_rows(
    ch: ClickHouse,
    card: ModelCard,
    config: MonitorConfig,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[dict[str, Any]]:
    """Per category, the served version's traffic in ``[start, end)`` against its card's
    reference (``reference``: the category's own, or the overall one) and, for the label
    shares, against the same span before it (``label_psi``; ``label_psi_card``: against the
    card's class-balanced validation shares, for reading, never judged, see
    ``stream.monitoring.rules``); ``drifted`` names the checks over their thresholds
    (categories with fewer than ``monitor_min_reviews`` reviews are left out)."""
    if card.reference is None:
        return []
    rows = []
    before = read_traffic(ch, start - (end - start), start, card.version)
    for category, traffic in read_traffic(ch, start, end, card.version).items():
        if traffic.profile.reviews < config.monitor_min_reviews:
            continue
        reference = card.reference.for_category(category)
        checks = {
            check.name: check
            for check in drift_checks(traffic, reference, config, before.get(category))
        }
        rows.append(
            {
                "category": category,
                "reviews": traffic.profile.reviews,
                "label_psi": checks["label_psi"].value if "label_psi" in checks else None,
                "label_psi_card": label_psi(reference.label_shares, traffic.profile.label_shares),
                **{
                    name: checks[name].value if name in checks else None
                    for name in ("confidence_psi", "length_psi")
                },
                "neutral_share": traffic.profile.neutral_share,
                "unknown_token_share": (
                    traffic.profile.unknown_token_share if traffic.tokens else None
                ),
                "reference": category if reference is not card.reference else "(overall)",
                "drifted": ", ".join(name for name, c in checks.items() if c.tripped) or "-",
            }
        )
    rows.sort(key=lambda r: (-(r["label_psi"] or 0.0), -r["label_psi_card"], r["category"]))
    return rows[:limit]


def model_health_sections(
    ch: ClickHouse,
    card: ModelCard | str,
    config: MonitorConfig,
    *,
    hours: int = 24,
    limit: int = 10,
    now: datetime,
) -> dict[str, Section]:
    """Title -> (rows, columns) of the model sections over the last ``hours``; ``card``:
    the served model's (:func:`served_card`), or why there is none."""
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(hours=hours)
    feedback = read_confusion(ch, start, end)
    sections: dict[str, Section] = {
        f"Rating feedback by model version and category (last {hours} h)": (
            feedback_rows(feedback, limit),
            FEEDBACK_COLUMNS,
        ),
        f"Prediction x rating (last {hours} h)": (confusion_rows(feedback), CONFUSION_COLUMNS),
    }
    if isinstance(card, str):
        sections[f"Drift (last {hours} h): {card}"] = ([], DRIFT_COLUMNS)
    elif card.reference is None:
        title = f"Drift of model {card.version} (last {hours} h): its card has no reference"
        sections[title] = ([], DRIFT_COLUMNS)
    else:
        title = f"Drift of model {card.version} against its reference (last {hours} h)"
        sections[title] = (drift_rows(ch, card, config, start, end, limit), DRIFT_COLUMNS)
    return sections
