"""Writing a model directory: ``save_pretrained`` output plus the ReviewPulse model card."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.predictor import CARD_FILE


def make_version(tag: str = "") -> str:
    """A sortable version name: UTC time, plus an optional tag (e.g. ``bert-c128l2``)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{tag}" if tag else stamp


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


def write_json(path: Path, data: Any) -> None:
    Path(path).write_text(
        json.dumps(_jsonable(data), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def save_model_dir(directory: Path, model: Any, tokenizer_dir: Path | None) -> Path:
    """Save weights + config (``save_pretrained``) and copy the tokenizer files; the card is
    written last (:func:`write_card`), once the directory is evaluated."""
    import shutil

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.cpu().save_pretrained(str(directory), safe_serialization=True)
    if tokenizer_dir is not None:
        for path in Path(tokenizer_dir).iterdir():
            if path.is_file():
                shutil.copy2(path, directory / path.name)
    return directory


def write_card(directory: Path, card: dict[str, Any]) -> None:
    card = {"created_at": datetime.now(UTC).isoformat(timespec="seconds"), **card}
    write_json(Path(directory) / CARD_FILE, card)
