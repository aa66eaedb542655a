from pathlib import Path

import pytest

from model.registry import (
    current_version,
    list_versions,
    publish,
    resolve_model_dir,
    set_current,
)


def _model_dir(tmp_path: Path, name: str) -> Path:
    source = tmp_path / name
    source.mkdir()
    (source / "config.json").write_text("{}")
    return source


def test_publish_moves_current_and_resolves_by_version(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    publish(registry, "sentiment", "v1", _model_dir(tmp_path, "a"))
    publish(registry, "sentiment", "v2", _model_dir(tmp_path, "b"))
    assert current_version(registry, "sentiment") == "v2"
    assert resolve_model_dir(registry, "sentiment") == registry / "sentiment" / "v2"
    assert resolve_model_dir(registry, "sentiment", "v1") == registry / "sentiment" / "v1"
    assert list_versions(registry, "sentiment") == ["v1", "v2"]


def test_publish_without_current_and_rollback(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    publish(registry, "sentiment", "v1", _model_dir(tmp_path, "a"))
    publish(registry, "sentiment", "v2", _model_dir(tmp_path, "b"), make_current=False)
    assert current_version(registry, "sentiment") == "v1"
    set_current(registry, "sentiment", "v2")
    assert current_version(registry, "sentiment") == "v2"
    assert not [p for p in (registry / "sentiment").iterdir() if p.name.startswith(".")]


def test_versions_are_immutable(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    publish(registry, "sentiment", "v1", _model_dir(tmp_path, "a"))
    with pytest.raises(FileExistsError):
        publish(registry, "sentiment", "v1", _model_dir(tmp_path, "b"))


@pytest.mark.parametrize("version", ["../x", "current", "", "a/b", ".hidden"])
def test_bad_version_names_are_refused(tmp_path: Path, version: str) -> None:
    with pytest.raises(ValueError):
        publish(tmp_path, "sentiment", version, _model_dir(tmp_path, "a"))


def test_missing_pointer_and_version_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="CURRENT"):
        resolve_model_dir(tmp_path, "sentiment")
    publish(tmp_path, "sentiment", "v1", _model_dir(tmp_path, "a"))
    with pytest.raises(FileNotFoundError, match="no version"):
        resolve_model_dir(tmp_path, "sentiment", "v9")
