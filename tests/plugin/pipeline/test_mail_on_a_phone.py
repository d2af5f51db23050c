"""The check-in email read on a phone and on a desktop, in real Chromium: it reflows to
one column, its body text is at least 16 px as shown, nothing scrolls sideways, and
axe-core finds no serious problem. The 390 px rendering is screenshot into
tests/.screenshots/."""

from __future__ import annotations

import pytest

from tests.support.browser import (
    browser,
    phone_page,
    require_axe,
    require_chromium,
    screenshot,
    serious_violations,
)
from tests.support.survey import html_of, text_of

SHOWN = """() => {
  const style = getComputedStyle(document.body);
  const scale = window.visualViewport ? window.visualViewport.scale : 1;
  const smallest = [...document.querySelectorAll('p, a, span, li, td')]
    .filter(el => el.textContent.trim())
    .map(el => parseFloat(getComputedStyle(el).fontSize));
  return {
    body: parseFloat(style.fontSize),
    shown: parseFloat(style.fontSize) * scale,
    smallest: Math.min(...smallest) * scale,
    layoutWidth: document.documentElement.clientWidth,
    scrollWidth: document.documentElement.scrollWidth,
    title: document.title,
  };
}"""


@pytest.fixture
def email_html(deliver_generic, drain, mailbox):
    require_chromium()
    deliver_generic("appointment.completed")
    drain()
    (message,) = mailbox.messages
    return html_of(message)


@pytest.mark.parametrize("width", [390, 1280])
def test_the_email_reads_at_16_px_without_sideways_scrolling(email_html, width):
    with browser() as chromium:
        page = phone_page(chromium, width, 844, mobile=width < 600)
        page.set_content(email_html)
        shown = page.evaluate(SHOWN)
        if width == 390:
            screenshot(page, "email-390")
    print(f"\nemail at {width} px: body {shown['body']:.0f} px, shown at {shown['shown']:.1f} px, "
          f"smallest text {shown['smallest']:.1f} px, laid out {shown['layoutWidth']} px wide")
    assert shown["title"]
    assert shown["body"] >= 16
    assert shown["shown"] >= 16  # not zoomed out: a page laid out 980 px wide shrinks
    assert shown["smallest"] >= 14
    assert shown["layoutWidth"] == width
    assert shown["scrollWidth"] <= width


def test_the_email_has_no_serious_accessibility_problems(email_html):
    axe = require_axe()
    with browser() as chromium:
        page = phone_page(chromium)
        page.set_content(email_html)
        violations = serious_violations(page, axe)
    for violation in violations:
        print(f"\n{violation['impact']} {violation['id']}: {violation['help']}")
        for node in violation["nodes"]:
            print(f"  {node}")
    assert violations == []


def test_an_admins_test_is_marked_as_one_and_thanks_no_one_for_a_visit(app):
    from datetime import datetime, timedelta, timezone

    from plugin.pipeline.mail import CheckInEmail, compose

    check_in = CheckInEmail(to="admin@harbour.example", first_name=None,
                            clinic_name="Harbour Massage", therapist_name=None,
                            survey_url="http://rapport.test/s/T",
                            unsubscribe_url="http://rapport.test/s/T/unsubscribe",
                            expires_at=datetime.now(timezone.utc) + timedelta(days=4),
                            timezone="Europe/London", language="en", test=True)
    with app.app_context():
        message = compose(check_in)
    text, html = text_of(message), html_of(message)
    assert message["Subject"] == "[Test] The check-in your clients receive from Harbour Massage"
    assert text.startswith("[Test] ")
    assert "<title>[Test] " in html and "[Test]" in html
    for part in (text, html):
        assert "Thank you for your visit" not in part
        assert "nothing is written to the booking platform" in part
        assert "for your therapist to read" not in part  # a test is read by no one
