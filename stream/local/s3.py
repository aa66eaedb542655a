"""Run ``s3rver`` (an S3-compatible server from npm) on loopback, so Tansu can keep its
topics and committed offsets on disk (``s3://``) and survive a restart.

Install once: ``npm install --prefix .data/npm s3rver@3.7.1`` (or put ``s3rver`` on PATH).
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from stream.config import PROJECT_ROOT
from stream.local.processes import LocalService, free_port, port_open

NPM_PREFIX = PROJECT_ROOT / ".data" / "npm"
INSTALL_HINT = (
    f"s3rver not found. Install it with: npm install --prefix {NPM_PREFIX} s3rver@3.7.1 "
    "(needs node and npm)"
)
# s3rver accepts any request signed with these (its documented defaults).
ACCESS_KEY = "S3RVER"


def s3rver_binary() -> str:
    found = shutil.which("s3rver")
    if found:
        return found
    local = NPM_PREFIX / "node_modules" / ".bin" / "s3rver"
    if local.exists():
        return str(local)
    raise FileNotFoundError(INSTALL_HINT)


def s3rver_available() -> bool:
    try:
        s3rver_binary()
    except FileNotFoundError:
        return False
    return True


class S3Server(LocalService):
    """An s3rver subprocess keeping its objects under ``root``, with ``bucket`` created at
    start (see :class:`LocalService` for the lifecycle)."""

    service = "s3rver"
    stop_grace_s = 5.0

    def __init__(
        self,
        root: Path,
        *,
        bucket: str = "tansu",
        port: int | None = None,
        detach: bool = False,
        owner_dir: Path | None = None,
        ready_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(detach=detach, owner_dir=owner_dir, ready_timeout_s=ready_timeout_s)
        self.root = Path(root).resolve()
        self.bucket = bucket
        self.port = port or free_port()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def storage_url(self) -> str:
        """Tansu's ``--storage-engine`` for this server's bucket."""
        return f"s3://{self.bucket}/"

    def client_env(self) -> dict[str, str]:
        """What an S3 client (Tansu) needs in its environment to reach this server."""
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": ACCESS_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self) -> S3Server:
        binary = s3rver_binary()
        if port_open(self.port, self.host):
            raise RuntimeError(f"port {self.port} is already in use")
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        command = [binary, "-d", str(data), "-a", self.host, "-p", str(self.port)]
        self._spawn(
            [*command, "--configure-bucket", self.bucket, "--silent"],
            log_path=self.root / "s3rver.log",
        )
        self._await_ready(
            self._bucket_answers,
            what=f"s3rver on {self.endpoint}",
            log_hint=f"See {self.root / 's3rver.log'}.",
        )
        return self

    def _bucket_answers(self) -> bool:
        if not port_open(self.port, self.host):
            return False
        with urllib.request.urlopen(f"{self.endpoint}/{self.bucket}", timeout=2) as response:
            return response.status == 200
