"""Who may read the worker's web pages: one rule for every page, pure.

``/metrics`` and ``/health*`` stay open for probes and scrapers. Every other page (``/predict``,
``/reports/*``, dashboards) needs ``Authorization: Bearer <web-token>`` when a token is set;
without a token it answers only while the server binds a loopback address, so a worker
exposed by mistake serves nothing but its probes. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from stream.config import WebConfig

OPEN_PATHS = ("/metrics", "/health")


@dataclass(frozen=True)
class Denied:
    """Why a request is refused: an HTTP status and a message for the client."""

    status: int
    message: str


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (``0.0.0.0`` is every interface)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def is_open(path: str) -> bool:
    """Probe pages: ``/metrics``, ``/health`` and everything under ``/health/``."""
    return any(path == p or path.startswith(p + "/") for p in OPEN_PATHS)


@dataclass(frozen=True)
class WebAccess:
    """The access rule of one worker's web server (``check`` for each request)."""

    token: str
    exposed: bool  # bound to a non-loopback address

    @classmethod
    def of(cls, web: WebConfig) -> WebAccess:
        return cls(token=web.web_token, exposed=not is_loopback(web.web_host))

    def check(self, path: str, authorization: str | None) -> Denied | None:
        """None when a request for ``path`` with this ``Authorization`` header may proceed."""
        if is_open(path):
            return None
        if self.token:
            scheme, _, given = (authorization or "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                given.strip().encode(), self.token.encode()
            ):
                return None
            return Denied(401, "this page needs Authorization: Bearer <REVIEWPULSE_WEB_TOKEN>")
        if self.exposed:
            return Denied(
                403,
                "the worker listens on a non-loopback address without REVIEWPULSE_WEB_TOKEN: "
                "only /metrics and /health* are served",
            )
        return None
