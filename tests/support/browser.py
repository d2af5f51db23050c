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
DESKTOP = {"width": 1280, "height": 800}
"""A common phone's viewport in CSS pixels (iPhone 12 to 15)."""
TAP_TARGET = 44
"""The smallest comfortable tap target, in CSS pixels (WCAG 2.5.5, Apple's guidelines)."""
SUPPORT = Path(__file__).resolve().parent
AXE = SUPPORT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = SUPPORT.parent / ".screenshots"
# The console's, a folder the README names (gitignored): build/screenshots/console/.
CONSOLE_SCREENSHOTS = SUPPORT.parents[1] / "build" / "screenshots" / "console"
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


def axe_source() -> str | None:
    """axe-core's source, or None: the checks are then skipped, the reason printed (for a
    story whose other checks still run without it)."""
    if not AXE.is_file():
        print(f"\naxe-core is not installed at {AXE} (run: npm ci --prefix tests/support): "
              "the accessibility checks are skipped")
        return None
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


def new_page(chromium, size: dict = DESKTOP, *, mobile: bool = False):
    """A page in a context of its own (its own cookies, downloads accepted); axe-core can
    be injected past the CSP, which allows no script."""
    context = chromium.new_context(viewport=size, is_mobile=mobile, has_touch=mobile,
                                   bypass_csp=True, accept_downloads=True)
    return context.new_page()


def serious_violations(page, source: str | None) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now (none when
    axe-core is not installed: see :func:`axe_source`)."""
    if source is None:
        return []
    page.add_script_tag(content=source)
    result = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [node["html"][:160] for node in v["nodes"][:5]]}
        for v in result["violations"] if v["impact"] in SERIOUS
    ]


def screenshot(page, name: str, folder: Path = SCREENSHOTS) -> Path:
    """A full-page screenshot under ``folder`` (tests/.screenshots/, gitignored, unless
    told), to look at."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
