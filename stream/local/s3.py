"""Run an S3-compatible server on loopback (moto's: PyPI ``moto[s3]`` with flask), so Tansu
can keep its topics and committed offsets outside its own process (``s3://``) and survive a
restart, graceful or ``kill -9``.

The server must honour conditional writes. Tansu keeps each partition's next offset (its
watermark) in one object and changes it only with ``If-None-Match: *`` (create) or
``If-Match: <etag>`` (update), reading the object again when the server answers 412. A server
that ignores those headers (s3rver 3.7.1 from npm does) lets a restarted broker whose first
request on a partition is a produce create the watermark afresh at offset 0: the new records
overwrite acknowledged ones. ``python -m bench.broker_restart`` measures both servers.

moto keeps the objects in memory: they outlive broker restarts, not the S3 server's own.
"""

from __future__ import annotations

import importlib.util
import sys
import urllib.request
from pathlib import Path

from stream.local.processes import LocalService, free_port, port_open

INSTALL_HINT = (
    "moto's S3 server is not installed: pip install -e '.[test]' (moto[s3], flask, flask-cors)"
)
# moto does not check request signatures; Tansu's S3 client still needs a key to sign with.
ACCESS_KEY = "testing"


def s3_server_available() -> bool:
    """True where ``python -m moto.server`` can run (moto and its web server, flask)."""
    return all(
        importlib.util.find_spec(name) is not None for name in ("moto", "flask", "flask_cors")
    )


class S3Server(LocalService):
    """moto's S3 server as a subprocess, logging to ``root/s3.log``, with ``bucket`` created
    at start (see :class:`LocalService` for the lifecycle)."""

    service = "moto"  # occurs in its command line: python -m moto.server
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
        if not s3_server_available():
            raise FileNotFoundError(INSTALL_HINT)
        if port_open(self.port, self.host):
            raise RuntimeError(f"port {self.port} is already in use")
        self.root.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
        self._spawn(command, log_path=self.root / "s3.log")
        self._await_ready(
            self._bucket_ready,
            what=f"moto S3 server on {self.endpoint}",
            log_hint=f"See {self.root / 's3.log'}.",
        )
        return self

    def _bucket_ready(self) -> bool:
        """Create the bucket (idempotent in us-east-1) once the server answers."""
        if not port_open(self.port, self.host):
            return False
        create = urllib.request.Request(f"{self.endpoint}/{self.bucket}", method="PUT")
        with urllib.request.urlopen(create, timeout=2) as response:
            return response.status == 200
