"""Choosing which language's text to show, falling back to English."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

FALLBACK = "en"


def resolve(requested: str | None, available: Iterable[str]) -> str:
    """The best of ``available`` for ``requested``: itself, its base ('fr-CA' → 'fr'),
    English, or else the first one available."""
    choices = list(available)
    if requested:
        wanted = requested.replace("_", "-")
        for candidate in (wanted, wanted.split("-")[0].lower()):
            if candidate in choices:
                return candidate
    return FALLBACK if FALLBACK in choices else choices[0]


def pick(texts: Mapping[str, str], language: str | None) -> str:
    return texts[resolve(language, texts)]
