"""Model registries for serving tests: copies of the shipped model under new version names
(the card rewritten to match, as training would have written it), and broken ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from model.card import CARD_FILE
from model.registry import publish, resolve_model_dir
from model.runtime import ONNX_FILE
from stream.config import PROJECT_ROOT

NAME = "sentiment"
SHIPPED = resolve_model_dir(PROJECT_ROOT / "model" / "registry", NAME)
_SKIP = shutil.ignore_patterns("evaluation", "exploration")


def publish_copy(
    registry: Path, version: str, *, make_current: bool = False, card_version: str | None = None
) -> Path:
    """The shipped model published as ``version`` (its card says ``card_version``, by default
    ``version``): a different version for the registry, the same network."""
    staging = registry.parent / f"staging-{version}"
    shutil.copytree(SHIPPED, staging, ignore=_SKIP)
    card = json.loads((staging / CARD_FILE).read_text(encoding="utf-8"))
    card["version"] = card_version or version
    (staging / CARD_FILE).write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")
    try:
        return publish(registry, NAME, version, staging, make_current=make_current)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish_broken(registry: Path, version: str, *, how: str = "truncated") -> Path:
    """A copy whose model file is ``truncated`` (half of the ONNX export) or ``missing``
    (neither the ONNX export nor the PyTorch weights)."""
    directory = publish_copy(registry, version)
    onnx = directory / ONNX_FILE
    if how == "truncated":
        data = onnx.read_bytes()
        onnx.write_bytes(data[: len(data) // 2])
    elif how == "missing":
        onnx.unlink()
        (directory / "model.safetensors").unlink()
    else:
        raise ValueError(how)
    return directory
