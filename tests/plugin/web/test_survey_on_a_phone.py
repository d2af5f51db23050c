"""The check-in on a phone, in real Chromium: how long the page is, how many taps it
takes, whether every choice is big enough to tap, and what axe-core finds.

For each shipped instrument and language, at 390 × 844 CSS px, the test prints the page
height (in CSS px and in phone screens), the taps to finish and an estimate of the time
it takes, and screenshots the English pages into tests/.screenshots/. The estimate: the
words a sighted client reads (a label repeated under every statement counts once) at 200
words a minute, plus 2 seconds a tap. A page that says it takes about (or under) a minute
must estimate 75 seconds at most.
"""

from __future__ import annotations

import re

import pytest

from tests.support.browser import (
    PHONE,
    TAP_TARGET,
    browser,
    phone_page,
    require_axe,
    require_chromium,
    screenshot,
    serious_violations,
)
from tests.support.servers import LiveServer
from tests.support.survey import survey_path

INSTRUMENTS = ("rapport-checkin", "rapport-pulse")
LANGUAGES = ("en", "fr", "es")
WORDS_PER_MINUTE = 200
"""Reading on a phone, a little slower than the adult average of about 240."""
SECONDS_PER_TAP = 2
ABOUT_A_MINUTE = re.compile(
    r"about a minute|environ une minute|alrededor de un minuto|under a minute"
    r"|moins d'une minute|menos de un minuto",
    re.IGNORECASE,
)


@pytest.fixture
def pages(app, generic_clinic_factory, deliver_generic, drain, mailbox):
    """A live Rapport, and the path of one check-in per instrument × language."""
    require_chromium()
    live = LiveServer(app)
    paths = {}
    for number, instrument in enumerate(INSTRUMENTS):
        clinic = generic_clinic_factory(instrument=instrument)
        for language in LANGUAGES:
            sent = len(mailbox.messages)
            response = deliver_generic("appointment.completed", to=clinic, locale=language,
                               appointment_id=f"A-{instrument}-{language}",
                               client_id=f"C-{number}-{language}")
            assert response.status_code == 202
            drain()
            assert len(mailbox.messages) == sent + 1
            paths[instrument, language] = live.url + survey_path(mailbox.messages[-1])
    yield paths
    live.stop()


MEASURE = """() => {
  const boxes = [...document.querySelectorAll('label.point')].map(label => {
    const box = label.getBoundingClientRect();
    return {width: box.width, height: box.height, text: label.textContent.trim()};
  });
  // What a sighted client reads: not the labels kept for screen readers alone.
  const main = document.querySelector('main').cloneNode(true);
  main.querySelectorAll('.sr-only').forEach(hidden => hidden.remove());
  document.body.appendChild(main);
  const shown = main.innerText;
  main.remove();
  const button = document.querySelector('button[type=submit]').getBoundingClientRect();
  return {
    height: document.documentElement.scrollHeight,
    scrollWidth: document.documentElement.scrollWidth,
    items: document.querySelectorAll('fieldset.item').length,
    boxes,
    button: {width: button.width, height: button.height},
    // Words, not numbers or signs; a label repeated under every statement is read once.
    words: [...new Set(shown.split('\\n').map(line => line.trim()))]
      .join(' ').split(/\\s+/).filter(word => /\\p{L}/u.test(word)).length,
    text: shown,
  };
}"""


def test_every_check_in_fits_a_phone_with_big_enough_targets(pages):
    rows = []
    with browser() as chromium:
        page = phone_page(chromium)
        for (instrument, language), url in pages.items():
            page.goto(url)
            measured = page.evaluate(MEASURE)
            taps = measured["items"] + 1  # one choice per statement, then "Send"
            seconds = measured["words"] / WORDS_PER_MINUTE * 60 + taps * SECONDS_PER_TAP
            smallest = min(measured["boxes"], key=lambda box: min(box["width"], box["height"]))
            rows.append((instrument, language, measured["height"],
                         measured["height"] / PHONE["height"], taps, seconds,
                         smallest["width"], smallest["height"]))
            if language == "en":
                screenshot(page, f"survey-{instrument}-{language}-390")
            small = [box for box in measured["boxes"]
                     if box["width"] < TAP_TARGET or box["height"] < TAP_TARGET]
            assert small == [], f"{instrument} {language}: choices under 44 × 44 px: {small}"
            assert measured["button"]["height"] >= TAP_TARGET
            assert measured["scrollWidth"] <= PHONE["width"], f"{instrument} {language} scrolls"
            # About two phone screens for the 8-statement check-in (it was four and a half).
            assert measured["height"] <= 2.5 * PHONE["height"], f"{instrument} {language}"
            if ABOUT_A_MINUTE.search(measured["text"]):
                assert seconds <= 75, f"{instrument} {language} says about a minute: {seconds}"
    print("\ninstrument       lang  height px  screens  taps  est. time  smallest target")
    for instrument, language, height, screens, taps, seconds, width, tall in rows:
        print(f"{instrument:<16} {language:<5} {height:>9} {screens:>8.1f} {taps:>5} "
              f"{seconds:>8.0f} s  {width:.0f} × {tall:.0f} px")


def test_the_check_in_pages_have_no_serious_accessibility_problems(pages):
    axe = require_axe()
    found = {}
    with browser() as chromium:
        page = phone_page(chromium)
        for (instrument, language), url in pages.items():
            page.goto(url)
            violations = serious_violations(page, axe)
            if violations:
                found[f"{instrument} {language}"] = violations
        # The same form given back with every question marked as unanswered.
        page.goto(pages["rapport-checkin", "en"])
        page.click("button[type=submit]")
        page.wait_for_selector(".error-summary")
        screenshot(page, "survey-rapport-checkin-en-errors-390")
        violations = serious_violations(page, axe)
        if violations:
            found["rapport-checkin en, with errors"] = violations
    for where, violations in found.items():
        print(f"\n{where}:")
        for violation in violations:
            print(f"  {violation['impact']} {violation['id']}: {violation['help']}")
            for node in violation["nodes"]:
                print(f"    {node}")
    assert found == {}


def test_a_test_check_in_ends_on_one_message_and_the_note(app, generic_clinic, mailbox):
    """An admin's test: the thank-you page says it was a test, that nothing was written,
    and shows the note; it never also says the therapist will read the answers."""
    from plugin.clinics import records as clinics
    from plugin.pipeline import sending as invitations
    from plugin.store import database as storage

    axe = require_axe()
    with app.app_context():
        with storage.session() as db:
            clinic_id = clinics.by_key(db, generic_clinic["key"]).id
        assert invitations.send_test(clinic_id, "admin@harbour.example").status == "sent"
    live = LiveServer(app)
    try:
        with browser() as chromium:
            page = phone_page(chromium)
            page.goto(live.url + survey_path(mailbox.messages[-1]))
            for group in page.locator("fieldset.item").all():
                group.locator("label.point").nth(3).click()
            page.click("button[type=submit]")
            page.wait_for_selector("pre.test-note")
            text = page.inner_text("main")
            screenshot(page, "thanks-test-390")
            violations = serious_violations(page, axe)
    finally:
        live.stop()
    assert "This was a test" in text
    assert "Nothing was written to the booking platform" in text
    assert "will read them" not in text
    assert "[Rapport]" in text and "[/Rapport]" in text
    assert violations == []
