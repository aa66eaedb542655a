"""The page's static files: everything the HTML loads is served from the worker (no CDN),
the vendored library carries its licence and version, and no script turns data into
markup."""

from __future__ import annotations

import re

from stream.dashboard.pages import SECURITY_HEADERS, STATIC_DIR, static_files

PREFIX = "/dashboard/static/"


def test_every_asset_the_pages_load_is_served_here() -> None:
    files = static_files()
    for page in ("index.html", "product.html"):
        html = files[page][0].decode()
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert refs, page
        for ref in refs:
            if ref in ("/", "data:,"):
                continue
            assert ref.startswith(PREFIX), f"{page} loads {ref} from elsewhere"
            assert ref[len(PREFIX) :] in files, f"{page} loads {ref}, which is not served"
    assert files["index.js"][1] == "text/javascript; charset=utf-8"


def test_the_vendored_chart_library_names_its_version_and_licence() -> None:
    vendor = STATIC_DIR / "vendor"
    header = (vendor / "uPlot.iife.min.js").read_text()[:80]
    assert "v1.6.32" in header
    assert "MIT License" in (vendor / "uPlot.LICENSE").read_text()
    assert "1.6.32" in (vendor / "README.md").read_text()


def test_no_script_writes_markup() -> None:
    for path in STATIC_DIR.glob("*.js"):
        text = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{path.name} uses {sink}"
    assert "script-src 'self'" in SECURITY_HEADERS["Content-Security-Policy"]
    assert "'unsafe-inline'" not in SECURITY_HEADERS["Content-Security-Policy"].split(";")[1]
