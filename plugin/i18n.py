"""Client-facing strings in the client's language.

Templates and emails call ``_("English text")``; the translations live in
``plugin/translations/<language>.po`` (gettext catalogues, read with Babel). English is
the source language, so a string without a translation shows in English.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po
from flask import Flask, render_template

TRANSLATIONS = Path(__file__).parent / "translations"
SOURCE_LANGUAGE = "en"


@cache
def catalogue(language: str) -> dict[str, str]:
    path = TRANSLATIONS / f"{language}.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        po = read_po(handle, locale=language)
    return {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}


def supported_languages() -> list[str]:
    return [SOURCE_LANGUAGE] + sorted(p.stem for p in TRANSLATIONS.glob("*.po"))


def pick_language(*preferences: str | None) -> str:
    """The first supported language among ``preferences`` ('fr-CA' counts as 'fr')."""
    available = supported_languages()
    for preference in preferences:
        if not preference:
            continue
        language = preference.replace("_", "-").split("-")[0].lower()
        if language in available:
            return language
    return SOURCE_LANGUAGE


def translator(language: str) -> Callable[..., str]:
    messages = catalogue(language) if language != SOURCE_LANGUAGE else {}

    def gettext(message: str, **values: object) -> str:
        text = messages.get(message, message)
        return text % values if values else text

    return gettext


def init_app(app: Flask) -> None:
    # Templates get `_` per render (see render_localized); this default keeps a
    # template rendered without a language readable in English.
    app.jinja_env.globals.setdefault("_", translator(SOURCE_LANGUAGE))


def render_localized(template: str, language: str, **context: object) -> str:
    return render_template(template, _=translator(language), language=language, **context)
