"""The model registry: ``<registry>/<name>/<version>/`` directories and a ``CURRENT`` pointer.

``CURRENT`` (one line: a version) names the version served by default. Publishing copies a
finished directory in under a temporary name and renames it, then replaces ``CURRENT``
atomically, so a reader never sees a half-written model. A server resolves its directory
(:func:`resolve_model_dir`) and loads it (``model.predictor.SentimentModel.load``); a worker
that follows ``CURRENT`` re-reads the pointer on a timer and swaps models between batches.

``SHADOW`` (JSON: version, share, started_at), when present, names a candidate that workers
also score, on a share of live reviews, beside the served model (``reviewpulse shadow``).
Both pointers are replaced atomically, so every worker (and a restarted one) reads the same.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

CURRENT_FILE = "CURRENT"
SHADOW_FILE = "SHADOW"
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
    _replace_file(Path(registry) / name / CURRENT_FILE, version + "\n")


def _replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file renamed over it)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class ShadowSpec:
    """What ``SHADOW`` says: score ``share`` (0-1] of live reviews with ``version`` too."""

    version: str
    share: float
    started_at: str  # ISO 8601, UTC

    def __post_init__(self) -> None:
        check_version(self.version)
        if not 0 < self.share <= 1:
            raise ValueError(f"shadow share must be within (0, 1], got {self.share!r}")


def read_shadow(registry: Path, name: str) -> ShadowSpec | None:
    """The shadow candidate, or None when no shadow runs. A pointer that cannot be read
    raises ``ValueError`` naming the file."""
    pointer = Path(registry) / name / SHADOW_FILE
    try:
        text = pointer.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        return ShadowSpec(
            version=str(data["version"]),
            share=float(data["share"]),
            started_at=str(data["started_at"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{pointer} is not a valid shadow pointer: {exc}") from exc


def start_shadow(registry: Path, name: str, version: str, share: float) -> ShadowSpec:
    """Point ``SHADOW`` at ``version`` (which must exist), replacing any running shadow."""
    resolve_model_dir(registry, name, version)
    spec = ShadowSpec(
        version=version,
        share=float(share),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    _replace_file(Path(registry) / name / SHADOW_FILE, json.dumps(asdict(spec)) + "\n")
    return spec


def stop_shadow(registry: Path, name: str) -> ShadowSpec | None:
    """Remove ``SHADOW``; returns what it said (None when no shadow ran)."""
    pointer = Path(registry) / name / SHADOW_FILE
    try:
        spec = read_shadow(registry, name)
    except ValueError:
        spec = None
    pointer.unlink(missing_ok=True)
    return spec


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
