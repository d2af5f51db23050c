"""Which of an instrument's languages a client or clinic is shown."""

import pytest

from questionnaires.language import resolve


@pytest.mark.parametrize(("requested", "available", "shown"), [
    ("fr", ["en", "fr", "es"], "fr"),
    ("fr-CA", ["en", "fr"], "fr"),
    ("fr_FR", ["en", "fr"], "fr"),
    ("fr-CA", ["en", "fr", "fr-CA"], "fr-CA"),
    ("fr-ca", ["en", "fr-CA"], "fr-CA"),
    # A file translated for one region serves the language's other speakers too.
    ("fr", ["en", "fr-CA"], "fr-CA"),
    ("fr-FR", ["en", "fr-CA"], "fr-CA"),
    ("es", ["en", "es-419"], "es-419"),
    ("de", ["en", "fr"], "en"),
    ("de", ["en-GB", "fr"], "en-GB"),
    (None, ["fr", "en"], "en"),
    ("de", ["fr", "es"], "fr"),
])
def test_the_closest_language_then_english(requested, available, shown):
    assert resolve(requested, available) == shown
