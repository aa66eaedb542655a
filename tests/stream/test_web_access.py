"""The web access rule (stream.access): open probes, bearer token, loopback-only without one."""

from __future__ import annotations

import pytest

from stream.access import WebAccess, is_loopback, is_open
from stream.config import WebConfig


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("worker.internal", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_probe_paths_are_open_and_nothing_else() -> None:
    assert all(is_open(p) for p in ("/metrics", "/health", "/health/live", "/health/ready"))
    assert not any(is_open(p) for p in ("/predict", "/reports/products", "/", "/healthz"))


def test_loopback_without_token_serves_everything() -> None:
    access = WebAccess.of(WebConfig(web_host="127.0.0.1"))
    assert access.check("/predict", None) is None
    assert access.check("/reports/alerts", None) is None


def test_exposed_without_token_serves_only_probes() -> None:
    access = WebAccess.of(WebConfig(web_host="0.0.0.0"))
    denied = access.check("/predict", None)
    assert denied is not None and denied.status == 403
    assert "REVIEWPULSE_WEB_TOKEN" in denied.message
    assert access.check("/metrics", None) is None
    assert access.check("/health/ready", None) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_token_is_required_wherever_it_is_set(host: str) -> None:
    access = WebAccess.of(WebConfig(web_host=host, web_token="s3cret-token"))
    assert access.check("/predict", "Bearer s3cret-token") is None
    assert access.check("/predict", "bearer s3cret-token") is None  # the scheme is caseless
    for header in (
        None,
        "",
        "Bearer",
        "Bearer s3cret",
        "Bearer s3cret-token2",
        "Basic s3cret-token",
    ):
        denied = access.check("/reports/products", header)
        assert denied is not None and denied.status == 401, header
    assert access.check("/health", None) is None
