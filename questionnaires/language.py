"""Choosing which language's text to show, falling back to English."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

FALLBACK = "en"


def _base(code: str) -> str:
    return code.replace("_", "-").split("-")[0].lower()


def _best(wanted: str, choices: list[str]) -> str | None:
    """``wanted`` itself; else the plain language ('fr-FR' → 'fr'); else the same
    language in another region ('fr' or 'fr-FR' → 'fr-CA'). Codes compare without case."""
    wanted = wanted.replace("_", "-").lower()
    lowered = [choice.lower() for choice in choices]
    if wanted in lowered:
        return choices[lowered.index(wanted)]
    base = _base(wanted)
    if base in lowered:
        return choices[lowered.index(base)]
    return next((choice for choice in choices if _base(choice) == base), None)


def resolve(requested: str | None, available: Iterable[str]) -> str:
    """The best of ``available`` for ``requested`` (see ``_best``), else English, else
    the first one available."""
    choices = list(available)
    found = _best(requested, choices) if requested else None
    return found or _best(FALLBACK, choices) or choices[0]


def pick(texts: Mapping[str, str], language: str | None) -> str:
    return texts[resolve(language, texts)]
