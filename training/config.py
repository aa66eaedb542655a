"""The settings of the training commands besides the model's: where the reviews and the
reports are. A section like those of :mod:`stream.config` (flags and ``REVIEWPULSE_*``
variables of the same names)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from model.corpus import SHIPPED_CORPUS
from stream.config import PROJECT_ROOT, ConfigSection


class TrainingConfig(ConfigSection):
    """Inputs and outputs of the training commands."""

    training_corpus: Path = Field(
        SHIPPED_CORPUS,
        description="Reviews to train, evaluate and benchmark on when no --data is given "
        "(CSV/JSONL/zip).",
    )
    training_reports: Path = Field(
        PROJECT_ROOT / "reports",
        description="Directory of the explore, evaluate and tune reports (one subdirectory "
        "each) when no --out is given.",
    )
