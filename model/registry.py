"""The model registry: ``<registry>/<name>/<version>/`` directories and a ``CURRENT`` pointer.

``CURRENT`` (one line: a version) names the version served by default. Publishing copies a
finished directory in under a temporary name and renames it, then replaces ``CURRENT``
atomically, so a reader never sees a half-written model. A server resolves its directory
once (:func:`resolve_model_dir`) and loads it (``model.predictor.SentimentModel.load``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

CURRENT_FILE = "CURRENT"
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_version(version: str) -> str:
    if not _VERSION.match(version) or version.lower() == "current":
        raise ValueError(f"invalid model version {version!r}")
    return version


def current_version(registry: Path, name: str) -> str:
    pointer = Path(registry) / name / CURRENT_FILE
    if not pointer.is_file():
        raise FileNotFoundError(f"no {CURRENT_FILE} pointer for model {name!r} in {registry}")
    return check_version(pointer.read_text(encoding="utf-8").strip())


def resolve_model_dir(registry: Path, name: str, version: str = "current") -> Path:
    """The directory of ``name`` at ``version`` (``"current"`` follows the pointer)."""
    if version.lower() == "current":
        version = current_version(registry, name)
    directory = Path(registry) / name / check_version(version)
    if not directory.is_dir():
        raise FileNotFoundError(f"model {name!r} has no version {version!r} in {registry}")
    return directory


def list_versions(registry: Path, name: str) -> list[str]:
    root = Path(registry) / name
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _VERSION.match(p.name))


def set_current(registry: Path, name: str, version: str) -> None:
    resolve_model_dir(registry, name, version)
    root = Path(registry) / name
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".CURRENT.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(version + "\n")
    os.replace(tmp, root / CURRENT_FILE)


def publish(
    registry: Path, name: str, version: str, source: Path, *, make_current: bool = True
) -> Path:
    """Copy a finished model directory into the registry as ``version``."""
    check_version(version)
    root = Path(registry) / name
    root.mkdir(parents=True, exist_ok=True)
    target = root / version
    if target.exists():
        raise FileExistsError(f"{target} already exists; versions are immutable")
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{version}."))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if make_current:
        set_current(registry, name, version)
    return target
