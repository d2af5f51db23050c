"""A clinic admin asks Square for a test event from the console's connection page:
Square (the local stand-in) delivers a signed sample to Rapport on a real socket, and the
page says plainly what happened; where Rapport did not make the subscription, the page
says why there is no button."""

from __future__ import annotations

import html
import re

from plugin.clinics import admins, records
from plugin.store import database
from tests.support import browser, console, event_tests
from tests.support.square import square_credentials

connected_square = event_tests.connected_square  # the fixture, for this module
BUTTON = "Send a test event"


def notice(page: str) -> str:
    found = re.search(r'<p class="notice (\w+)" role="\w+">([^<]*)</p>', page)
    assert found, "no notice on the page"
    return f"{found.group(1)}: {html.unescape(found.group(2))}"


def press(connected):
    page = connected.browser.get(f"{connected.url}/admin/clinics/{connected.key}/", timeout=10)
    assert page.status_code == 200 and BUTTON in page.text
    return connected.browser.post(
        f"{connected.url}/admin/clinics/{connected.key}/test-event",
        data={"csrf_token": console.token_of(page.text)}, timeout=30)


def test_the_button_shows_that_square_reaches_rapport(connected_square, square_sandbox):
    before = connected_square.state()
    answer = press(connected_square)
    assert answer.status_code == 200
    assert notice(answer.text) == (
        "done: Square reached Rapport: it answered 200. Bookings made in Square reach "
        "Rapport the same way.")
    (delivered,) = square_sandbox.test_events
    assert delivered["url"] == f"{connected_square.url}/webhooks/square"
    assert connected_square.state() == before
    assert BUTTON in answer.text  # it can be pressed again


def test_the_page_says_what_to_check_when_rapport_refused_the_event(connected_square,
                                                                    square_sandbox):
    (subscription,) = square_sandbox.subscriptions
    subscription["signature_key"] = "rotated-in-the-developer-console"
    answer = press(connected_square)
    assert answer.status_code == 200
    said = notice(answer.text)
    assert said.startswith("problem: Square reached Rapport, but it answered 401: the "
                           "event's signature did not verify.")
    assert f"{connected_square.url}/webhooks/square, exactly" in said


def test_the_button_needs_the_forms_token(connected_square, square_sandbox):
    answer = connected_square.browser.post(
        f"{connected_square.url}/admin/clinics/{connected_square.key}/test-event", timeout=10)
    assert answer.status_code == 400
    assert square_sandbox.test_events == []


def test_a_manual_mode_clinic_is_told_why_there_is_no_button(square_app, square_sandbox):
    app, url = square_app
    with app.app_context(), database.session() as db:
        credentials = square_credentials(
            access_token=square_sandbox.personal_access_token,
            webhook_signature_key="harbour-key", notification_url=f"{url}/webhooks/square/harbour")
        records.create(db, name="Harbour", platform="square", credentials=credentials,
                       key="harbour")
    session = console.browser_session(app, url)
    page = session.get(f"{url}/admin/clinics/harbour/", timeout=10).text
    assert BUTTON not in page
    assert "Events from Square" in page
    assert "made by hand in Square, not by Rapport" in html.unescape(page)
    refused = session.post(f"{url}/admin/clinics/harbour/test-event",
                           data={"csrf_token": console.token_of(page)}, timeout=10)
    assert refused.status_code == 400
    assert notice(refused.text).startswith("problem: This clinic's events come on a Square "
                                           "webhook subscription of its own")
    assert square_sandbox.requests_to("POST", "/v2/webhooks/subscriptions") == []


def test_a_platform_without_test_events_shows_nothing_of_it(app, web, generic_clinic):
    console.sign_in(app, web, "dana@harbour.example", generic_clinic["key"])
    page = web.get(f"/admin/clinics/{generic_clinic['key']}/").get_data(as_text=True)
    assert BUTTON not in page and "Events from" not in page


def test_in_chromium_the_button_and_what_it_found(connected_square, square_sandbox):
    """Photographed at a phone's and a desktop's size, checked with axe-core."""
    connected = connected_square
    with connected.app.app_context():
        link = admins.invite("dana@harbour.example", clinic_key=connected.key, send=False).url
    axe = browser.axe_source()
    with browser.browser() as chromium:
        page = browser.new_page(chromium)
        page.goto(link)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        page.goto(f"{connected.url}/admin/clinics/{connected.key}/")
        with page.expect_navigation():
            page.get_by_role("button", name=BUTTON).click()
        assert page.get_by_role("status").inner_text().startswith(
            "Square reached Rapport: it answered 200.")
        violations = {}
        for name, size in (("desktop", browser.DESKTOP),
                           ("phone", browser.PHONE)):
            page.set_viewport_size(size)
            violations[name] = browser.serious_violations(page, axe)
            browser.screenshot(page, f"console-test-event-{name}", browser.CONSOLE_SCREENSHOTS)
    assert violations == {"desktop": [], "phone": []}
    assert len(square_sandbox.test_events) == 1
