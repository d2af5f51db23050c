"""The documentation keeps up with the code: every setting Rapport reads is in
docs/configuration.md, and every relative link in README.md and docs/ leads to a file
that exists."""

from __future__ import annotations

import re
from pathlib import Path

from plugin.config import DEFAULTS, PLATFORM_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"
# [text](target) and [text](target "title"); images too. Autolinks (<https://…>) and
# bare URLs are never relative.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")


def documented_settings() -> set[str]:
    text = CONFIGURATION.read_text(encoding="utf-8")
    return set(re.findall(r"`RAPPORT_([A-Z0-9_]+)`", text))


def test_every_setting_is_in_the_configuration_page():
    """A setting in plugin.config.DEFAULTS (the core ones and every platform's declared
    ones) appears as `RAPPORT_<NAME>` in docs/configuration.md."""
    missing = sorted(name for name in DEFAULTS if name not in documented_settings())
    assert missing == [], (
        f"add {', '.join(f'RAPPORT_{name}' for name in missing)} to docs/configuration.md")


def test_the_settings_check_sees_platform_settings():
    """DEFAULTS holds every platform's settings, so the check above covers them."""
    assert PLATFORM_SETTINGS
    assert set(PLATFORM_SETTINGS) <= set(DEFAULTS)
    assert {"SQUARE_ENVIRONMENT", "CLINIKO_CONTACT_EMAIL"} <= set(DEFAULTS)


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def relative_links(path: Path) -> list[tuple[int, str]]:
    """Each relative link target in a Markdown file, with its line number; links inside
    fenced code blocks are code, not links."""
    found, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if fenced:
            continue
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
                continue  # a URL with a scheme (https:, mailto:), or a place on this page
            found.append((number, target))
    return found


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation
    dropped, spaces as hyphens."""
    found, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)):
            found.add(re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-"))
    return found


def test_every_relative_link_leads_to_a_file():
    """A relative link names a file that exists; with a ``#part``, a heading of it."""
    broken = []
    for path in documents():
        for number, target in relative_links(path):
            file_part, _, anchor = target.partition("#")
            linked = path.parent / file_part
            if not linked.exists() or (anchor and linked.is_file()
                                       and anchor not in anchors(linked)):
                broken.append(f"{path.relative_to(ROOT)}:{number}: {target}")
    assert broken == []


def test_every_link_to_a_place_on_the_same_page_finds_its_heading():
    broken = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        for anchor in re.findall(r"\]\(#([^)\s]+)\)", text):
            if anchor not in anchors(path):
                broken.append(f"{path.relative_to(ROOT)}: #{anchor}")
    assert broken == []


def test_the_link_check_reads_links(tmp_path):
    """The check above finds the README's links to the docs, and skips URLs, anchors and
    code, so it cannot pass by reading nothing."""
    readme = [target for _, target in relative_links(ROOT / "README.md")]
    assert "docs/configuration.md" in readme
    assert "docs/architecture.md" in readme
    page = tmp_path / "page.md"
    page.write_text("See [a](other.md#part) and [b](https://example.com), [c](#here).\n"
                    "```\n[d](inside-code.md)\n```\n"
                    '![e](img/x.png "title")\n', encoding="utf-8")
    assert relative_links(page) == [(1, "other.md#part"), (5, "img/x.png")]
    page.write_text("# Connecting a clinic (generic platform)\n## One Square event's journey\n"
                    "```\n# not a heading\n```\n", encoding="utf-8")
    assert anchors(page) == {"connecting-a-clinic-generic-platform",
                             "one-square-events-journey"}
