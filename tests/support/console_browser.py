"""Driving Debian's Chromium through the console, checking its pages with axe-core, and
keeping a screenshot of each page at a phone's and a desktop's size.

The same as ``tests/support/browser.py`` where that module exists (the system's
``chromium`` or ``RAPPORT_TEST_CHROMIUM``; axe-core from ``npm ci --prefix
tests/support``, which ``make test`` runs), with the console's screenshot folder:
``build/screenshots/console/`` (gitignored), written by every run of the console's
browser test. A test that needs Chromium or axe-core skips, saying why, without them.
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
DESKTOP = {"width": 1280, "height": 800}
SUPPORT = Path(__file__).resolve().parent
AXE = SUPPORT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = SUPPORT.parents[1] / "build" / "screenshots" / "console"
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
    found = chromium_path()
    if found is None:
        skip("no Chromium found (install Debian's chromium, or set RAPPORT_TEST_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip("Playwright is not installed (make dev installs it)")
    return found


def axe_source() -> str | None:
    """axe-core's source, or None (the checks are then skipped, the reason printed)."""
    if not AXE.is_file():
        print(f"\naxe-core is not installed at {AXE} (run: npm ci --prefix tests/support): "
              "the accessibility checks are skipped")
        return None
    return AXE.read_text(encoding="utf-8")


@contextmanager
def browser() -> Iterator:
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def new_page(chromium, size: dict = DESKTOP, *, mobile: bool = False):
    """A page in a context of its own (its own cookies); axe-core can be injected past
    the console's CSP, which allows no script."""
    context = chromium.new_context(viewport=size, is_mobile=mobile, has_touch=mobile,
                                   bypass_csp=True, accept_downloads=True)
    return context.new_page()


def serious_violations(page, source: str | None) -> list[dict]:
    if source is None:
        return []
    page.add_script_tag(content=source)
    result = page.evaluate("async () => await axe.run(document)")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [node["html"][:160] for node in v["nodes"][:5]]}
            for v in result["violations"] if v["impact"] in SERIOUS]


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
