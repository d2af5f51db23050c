"""An admin's test check-in says so on every page, and in one voice: the form is marked
as a test, and its thank-you page says nothing was written, never that a therapist will
read the answers. The pages read ``test`` (and ``test_note``) from what they are given."""

from __future__ import annotations

import re
from html import unescape

import pytest
from flask import render_template

from plugin.i18n import translator
from plugin.pipeline import instruments


def form_page(app, language: str, **context) -> str:
    with app.test_request_context("/s/T"):
        form = instruments.get("rapport-checkin").localized(language)
        return render_template("survey/form.html", _=translator(language), language=language,
                               chrome_language=language, clinic_name="Harbour Massage",
                               form=form, token="T", errors={}, values={}, **context)


@pytest.mark.parametrize(("language", "marker"), [("en", "[Test]"), ("fr", "[Test]"),
                                                  ("es", "[Prueba]")])
def test_a_test_check_in_form_is_marked_as_one(app, language, marker):
    page = form_page(app, language, test=True)

    assert re.search(rf"<title>{re.escape(marker)} ", page)
    banner = unescape(re.search(r'<p class="test-banner">(.*?)</p>', page).group(1))
    assert banner == translator(language)(
        "This is a test check-in: your answers are scored, nothing is written to the "
        "booking platform.")
    assert "for your therapist to read" not in page  # a test is read by no one


def test_a_clients_form_carries_no_test_marker(app):
    page = form_page(app, "en")

    assert "[Test]" not in page and "test-banner" not in page
    assert "for your therapist to read before your next visit" in page


def test_a_test_thank_you_page_says_one_thing(app):
    with app.test_request_context("/s/T"):
        page = render_template("survey/thanks.html", _=translator("en"), language="en",
                               test=True, test_note="[Rapport]\nGoing well\n[/Rapport]")
        client = render_template("survey/thanks.html", _=translator("en"), language="en")

    assert "This was a test" in page and "Nothing was written" in page
    assert "[Rapport]" in page
    assert "will read them" not in page
    assert "Your therapist will read them before your next visit." in client
    assert "test" not in client.lower()
