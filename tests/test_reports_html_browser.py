"""Open report.html in real headless Chromium: it renders, logs no errors, fetches nothing.

Uses Debian's chromium driven by the playwright package (no `playwright install`).
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from reports.write import write_report

STORES = Path(__file__).parent / "data" / "stores"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    out = write_report(STORES / "generated_report.sqlite", tmp_path_factory.mktemp("r") / "rep")
    return out / "report.html"


def _open(html_path: Path, full_page: bool) -> tuple[bytes, list[str], list[str], dict]:
    """Load the page; return screenshot, console errors, non-local requests, image stats."""
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
            page.on(
                "request",
                lambda r: (
                    None if r.url.startswith(("file://", "data:")) else requests.append(r.url)
                ),
            )
            # Nothing leaves the machine even if the page tries: abort, but still record.
            page.route(re.compile(r"^(?!file:|data:)"), lambda route: route.abort())
            page.goto(html_path.as_uri(), wait_until="networkidle")
            stats = page.evaluate(
                "() => ({n: document.images.length,"
                " loaded: Array.from(document.images).filter(i => i.complete &&"
                " i.naturalWidth > 0).length, text: document.body.innerText.length,"
                " page_width: document.documentElement.scrollWidth, view: window.innerWidth})"
            )
            shot = page.screenshot(full_page=full_page)
        finally:
            browser.close()
    return shot, errors, requests, stats


def _non_blank_fraction(png: bytes) -> tuple[float, float]:
    """Fraction of pixels that are not (near) white, and pixel std."""
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return float((img < 240).mean()), float(img.std())


def test_report_renders_offline_in_chromium(report_html: Path) -> None:
    shot, errors, requests, stats = _open(report_html, full_page=True)
    assert errors == []
    assert requests == []
    assert stats["n"] >= 5 and stats["loaded"] == stats["n"]  # every plot decoded
    assert stats["text"] > 1000
    assert stats["page_width"] <= stats["view"]  # long tables scroll in their box, not the page
    ink, std = _non_blank_fraction(shot)
    assert ink > 0.02 and std > 10


def test_blank_page_is_detected_as_blank(tmp_path: Path) -> None:
    """The non-blank check itself can fail: an empty page is reported blank."""
    empty = tmp_path / "empty.html"
    empty.write_text("<!DOCTYPE html><html><body></body></html>")
    shot, errors, _, stats = _open(empty, full_page=False)
    assert errors == [] and stats["n"] == 0
    assert _non_blank_fraction(shot)[0] < 0.001


def test_network_request_would_be_caught(tmp_path: Path) -> None:
    """A page that tries to load a remote resource is caught by the request listener."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><img src="http://192.0.2.1/x.png"></body></html>')
    _, _, requests, _ = _open(bad, full_page=False)
    assert any("192.0.2.1" in u for u in requests)
