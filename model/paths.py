"""Where the repository is, and how a file is named in a model card or report.

Cards and reports travel with the model (they are committed under ``model/registry``), so they
never hold a path of the machine that wrote them: a file under the repository is named by its
path relative to the repository root, anything else by the sha256 of its content.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex sha256 of one file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, or of a directory's files (each relative name and
    content hash, in name order), so equal content hashes equal wherever it lies."""
    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for member in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{member.relative_to(path).as_posix()}\t{file_sha256(member)}\n".encode())
    return digest.hexdigest()


def repo_relative(path: Path) -> str | None:
    """``path`` relative to the repository root (POSIX separators), or None outside it."""
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return None


def portable_path(path: Path, *, sha256: str | None = None) -> str:
    """How a card or report names ``path``: repository-relative when under the repository,
    else ``sha256:<hex>`` of its content (:func:`content_sha256`, unless already known)."""
    return repo_relative(path) or f"sha256:{sha256 or content_sha256(path)}"
