"""Driving Debian's Chromium from tests, and checking pages with axe-core.

Playwright's own browser download does not work everywhere Rapport is tested, so the
tests drive the system's ``chromium`` (or the one named by ``RAPPORT_TEST_CHROMIUM``).
axe-core comes from npm (``npm ci --prefix tests/support``, which ``make test`` runs when
npm is on PATH). A test that needs either skips, printing why, when it is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
"""A common phone's viewport in CSS pixels (iPhone 12 to 15)."""
TAP_TARGET = 44
"""The smallest comfortable tap target, in CSS pixels (WCAG 2.5.5, Apple's guidelines)."""
SUPPORT = Path(__file__).resolve().parent
AXE = SUPPORT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = SUPPORT.parent / ".screenshots"
SERIOUS = ("serious", "critical")


def skip(reason: str) -> None:
    print(f"\nSkipping: {reason}")
    pytest.skip(reason)


def chromium_path() -> str | None:
    for name in (os.environ.get("RAPPORT_TEST_CHROMIUM"), "chromium", "chromium-browser"):
        found = name and shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The browser's path, or skip the test saying why."""
    found = chromium_path()
    if found is None:
        skip("no Chromium found (install Debian's chromium, or set RAPPORT_TEST_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip("Playwright is not installed (make dev installs it)")
    return found


def require_axe() -> str:
    """axe-core's source, or skip the test saying why."""
    if not AXE.is_file():
        skip(f"axe-core is not installed at {AXE} (run: npm ci --prefix tests/support)")
    return AXE.read_text(encoding="utf-8")


@contextmanager
def browser() -> Iterator:
    """A headless Chromium (Playwright's Browser), closed afterwards."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def phone_page(chromium, width: int = PHONE["width"], height: int = PHONE["height"],
               *, mobile: bool = True):
    """A page on a phone (``mobile``: the viewport meta counts, as on a phone, and a page
    without one is laid out 980 px wide and zoomed out) or, with ``mobile=False``, on a
    desktop. Its context lets axe-core be injected past the page's CSP (Rapport's pages
    allow no script at all)."""
    context = chromium.new_context(viewport={"width": width, "height": height},
                                   is_mobile=mobile, has_touch=mobile, bypass_csp=True)
    return context.new_page()


def serious_violations(page, axe_source: str) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(content=axe_source)
    result = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [node["html"][:160] for node in v["nodes"][:5]]}
        for v in result["violations"] if v["impact"] in SERIOUS
    ]


def screenshot(page, name: str) -> Path:
    """A full-page screenshot under tests/.screenshots/ (gitignored), to look at."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
