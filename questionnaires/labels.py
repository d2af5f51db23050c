"""Rapport's own words in each language (``locale/<language>.yaml``) and number/date formats.

Instrument wording comes from instrument files; these are the note's labels, flag
messages and the sentence saying why a response was not scored.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path

import yaml

from .language import resolve

LOCALE_DIR = Path(__file__).parent / "locale"


@cache
def languages() -> tuple[str, ...]:
    return tuple(sorted(path.stem for path in LOCALE_DIR.glob("*.yaml")))


@cache
def _catalogue(language: str) -> dict:
    return yaml.safe_load((LOCALE_DIR / f"{language}.yaml").read_text(encoding="utf-8"))


def _entry(language: str, key: str):
    node = _catalogue(resolve(language, languages()))
    for part in key.split("."):
        node = node[part]
    return node


def label(language: str, key: str, **values: object) -> str:
    """The text for ``key`` ('flag.first_low'), with ``{name}`` placeholders filled."""
    return _entry(language, key).format(**values)


def plural(language: str, key: str, count: int, **values: object) -> str:
    """The form of ``key`` that suits ``count`` (zero/one/other)."""
    forms = _entry(language, key)
    # French treats 0 like 1 ("0 réponse"); English and Spanish only 1 is singular.
    singular = count in (0, 1) if resolve(language, languages()) == "fr" else count == 1
    if count == 0 and "zero" in forms:
        form = forms["zero"]
    else:
        form = forms["one"] if singular else forms["other"]
    return form.format(count=count, **values)


def number(value: float, language: str) -> str:
    """At most one decimal, with the language's decimal mark and no trailing ".0":
    72.5 → '72,5' in French, 50.0 → '50'."""
    # Adding 0.0 turns a rounded -0.0 into 0.0, so no "-0" is ever shown.
    text = f"{round(value, 1) + 0.0:.1f}".removesuffix(".0")
    return text.replace(".", _entry(language, "decimal"))


def change(value: float, language: str) -> str:
    return ("+" if round(value, 1) > 0 else "") + number(value, language)


def visit_date(day: date, language: str) -> str:
    return label(language, "date", year=day.year, month=day.month, day=day.day)
