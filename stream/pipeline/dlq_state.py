"""The dead-letter limit's window on disk, so a restart continues it instead of starting
empty (an empty window judges nothing for ``dlq_limit_window`` events, so a flood of bad
input would only turn into a slow crash loop). Once tripped, the limit stays tripped across
restarts until an operator removes the file, after fixing what sent the bad input."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class DlqWindowFile:
    """The window as a string of ``0``/``1`` (dead-lettered), oldest first."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[bool]:
        try:
            text = json.loads(self.path.read_text())["window"]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a damaged DLQ-limit window %s: %s", self.path, exc)
            return []
        return [flag == "1" for flag in str(text)]

    def save(self, outcomes: list[bool]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        window = "".join("1" if dead else "0" for dead in outcomes)
        temporary.write_text(json.dumps({"window": window}))
        os.replace(temporary, self.path)


def window_path(worker_data_dir: Path, app_id: str) -> Path:
    """Beside Faust's data of the same app (one worker process owns that directory)."""
    return worker_data_dir / app_id / "reviewpulse-dlq-window.json"
