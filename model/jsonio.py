"""Writing the JSON files of a model directory and of reports: UTF-8, indented, strict JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: NaN and infinities become null (strict JSON has none),
    numpy scalars plain numbers, tuples lists, keys strings."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return value


def write_json(path: Path, data: Any) -> None:
    Path(path).write_text(
        json.dumps(jsonable(data), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
