"""Writing a model directory: ``save_pretrained`` output, then (last) the model card."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def make_version(tag: str = "") -> str:
    """A sortable version name: UTC time, plus an optional tag (e.g. ``bert-c128l2``)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{tag}" if tag else stamp


def save_model_dir(directory: Path, model: Any, tokenizer_dir: Path | None) -> Path:
    """Save weights + config (``save_pretrained``) and copy the tokenizer files; the card is
    written last (:meth:`model.card.ModelCard.write`), once the directory is evaluated."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.cpu().save_pretrained(str(directory), safe_serialization=True)
    if tokenizer_dir is not None:
        for path in Path(tokenizer_dir).iterdir():
            if path.is_file():
                shutil.copy2(path, directory / path.name)
    return directory
