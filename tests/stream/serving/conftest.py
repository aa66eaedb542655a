"""A scratch registry whose CURRENT is a copy of the shipped model, version ``v1``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stream.serving.registry import publish_copy


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    root = tmp_path / "registry"
    root.mkdir()
    publish_copy(root, "v1", make_current=True)
    return root
