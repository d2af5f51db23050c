"""Every client-facing string has its French and Spanish translation."""

from __future__ import annotations

import re

import pytest

from plugin.i18n import catalogue, supported_languages, translator
from tests.support.rapport import ROOT

PLUGIN = ROOT / "plugin"
MESSAGE = re.compile(r"""_\(\s*"((?:[^"\\]|\\.)+)\"""")


def source_messages() -> set[str]:
    found = set()
    for path in [*PLUGIN.glob("templates/**/*.html"), *PLUGIN.glob("templates/**/*.txt"),
                 PLUGIN / "pipeline" / "mail.py", PLUGIN / "web" / "survey.py"]:
        found |= set(MESSAGE.findall(path.read_text()))
    return found


def test_the_languages_rapport_speaks():
    assert supported_languages() == ["en", "es", "fr"]


@pytest.mark.parametrize("language", ["fr", "es"])
def test_every_message_is_translated(language):
    messages = source_messages()
    assert len(messages) > 30
    missing = sorted(messages - set(catalogue(language)))
    assert missing == []


@pytest.mark.parametrize("language", ["fr", "es"])
def test_placeholders_survive_translation(language):
    for message, translated in catalogue(language).items():
        assert set(re.findall(r"%\(\w+\)s", message)) == set(
            re.findall(r"%\(\w+\)s", translated)), message


def test_translator_fills_placeholders_and_falls_back_to_english():
    assert translator("fr")("Thank you for your visit to %(clinic)s.", clinic="Harbour") == (
        "Merci de votre visite chez Harbour.")
    assert translator("de")("Thank you") == "Thank you"
