"""The registry's SHADOW pointer: written atomically, read back, removed; CURRENT untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.registry import (
    SHADOW_FILE,
    current_version,
    publish,
    read_shadow,
    start_shadow,
    stop_shadow,
)


def _registry(tmp_path: Path) -> Path:
    registry = tmp_path / "registry"
    for version in ("v1", "v2"):
        source = tmp_path / version
        source.mkdir()
        (source / "config.json").write_text("{}")
        publish(registry, "sentiment", version, source, make_current=version == "v1")
    return registry


def test_start_read_replace_and_stop(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    assert read_shadow(registry, "sentiment") is None
    spec = start_shadow(registry, "sentiment", "v2", 0.25)
    assert read_shadow(registry, "sentiment") == spec
    assert (spec.version, spec.share) == ("v2", 0.25) and spec.started_at.endswith("+00:00")
    assert start_shadow(registry, "sentiment", "v2", 1.0).share == 1.0  # replaced
    assert current_version(registry, "sentiment") == "v1"
    assert not [p for p in (registry / "sentiment").iterdir() if p.name.startswith(".")]
    assert stop_shadow(registry, "sentiment").version == "v2"
    assert read_shadow(registry, "sentiment") is None
    assert stop_shadow(registry, "sentiment") is None


@pytest.mark.parametrize(
    ("version", "share", "error"),
    [
        ("v9", 0.5, FileNotFoundError),
        ("../v1", 0.5, ValueError),
        ("v2", 0.0, ValueError),
        ("v2", 1.5, ValueError),
    ],
)
def test_bad_shadow_requests_are_refused(tmp_path: Path, version, share, error) -> None:
    registry = _registry(tmp_path)
    with pytest.raises(error):
        start_shadow(registry, "sentiment", version, share)
    assert read_shadow(registry, "sentiment") is None


def test_an_unreadable_pointer_is_a_clear_error_and_stop_clears_it(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    (registry / "sentiment" / SHADOW_FILE).write_text('{"version": "v2"}')
    with pytest.raises(ValueError, match="not a valid shadow pointer"):
        read_shadow(registry, "sentiment")
    assert stop_shadow(registry, "sentiment") is None
    assert not (registry / "sentiment" / SHADOW_FILE).exists()
