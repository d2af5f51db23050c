"""A new clinic admin's first day, in Chromium: invited, signs in from the email, connects
the clinic (a Standard Webhooks clinic, and a Square one through the Square stand-in),
changes the sending rules, sends a test, sees it on the health page, then the visits,
answers, expiries and rebookings come in, and the dashboard, the retention figures and
the CSV say exactly that; a failed note is retried from the health page; sign-out.

Each page is checked with axe-core (no serious or critical violation) and photographed
at a phone's and a desktop's size into build/screenshots/console/.

Marked slow: 25–30 s on the project's two-core machine. It is one story on purpose
(what the dashboard shows is what the earlier steps did), through every page, each
checked with axe-core and photographed twice; cut in parts, each would sign in and
build the clinic's history again.
"""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select, update

from handlers import generic
from plugin.clinics import admins, connecting, records
from plugin.pipeline import instruments, sweeper
from plugin.store import database
from plugin.store.models import CheckIn, Clinic, Response
from tests.support import browser, console
from tests.support.clock import drainer
from tests.support.generic import event_body
from tests.support.square import square_credentials
from tests.support.survey import answer, answers_for, survey_path

END = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=100)
DANA, LEE = ("T-2", "Dana"), ("T-3", "Lee")
# client: (therapist, answer on the 1–5 check-in, or "expire" / "open")
VISITS = {"C-1": (DANA, 5), "C-2": (DANA, 4), "C-3": (DANA, 3), "C-4": (DANA, 2),
          "C-5": (DANA, 4), "C-6": (LEE, 3), "C-7": (LEE, 1), "C-8": (LEE, "expire"),
          "C-9": (DANA, "open")}
REBOOKED_AFTER_DAYS = {"C-1": 20, "C-2": 50, "C-6": 80}


class Pages:
    """Visits pages, checking each with axe-core and photographing it at both sizes."""

    def __init__(self):
        self.axe = browser.axe_source()
        self.violations: dict[str, list] = {}
        self.shot: list[str] = []

    def check(self, page, name: str) -> None:
        for size_name, size in (("desktop", browser.DESKTOP),
                                ("phone", browser.PHONE)):
            page.set_viewport_size(size)
            found = browser.serious_violations(page, self.axe)
            if found:
                self.violations[f"{name} ({size_name})"] = found
            browser.screenshot(page, f"{name}-{size_name}", browser.CONSOLE_SCREENSHOTS)
        page.set_viewport_size(browser.DESKTOP)
        self.shot.append(name)


def submit(button) -> None:
    """Press a button or a link and wait for the page it leads to."""
    with button.page.expect_navigation():
        button.click()


def signed_post(url: str, secret: str, body: bytes) -> requests.Response:
    headers = generic.sign(body, secret=secret, msg_id=f"msg_{uuid.uuid4().hex}")
    return requests.post(url, data=body, headers=headers, timeout=10)


def table_row(page, caption: str, header: str) -> list[str]:
    table = page.locator("table", has=page.locator("caption", has_text=caption))
    row = table.locator("tr", has=page.locator("th", has_text=header)).first
    return [cell.strip() for cell in row.locator("td").all_inner_texts()]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_clinic_admins_first_day(square_app, square_sandbox, callback_receiver, mailbox):
    app, base = square_app
    drain = drainer(app)
    with app.app_context():
        harbour = connecting.add(name="Harbour Massage", platform_name="generic",
                                 given={"callback_url": callback_receiver.url},
                                 timezone="Europe/London", language=None)
        square = connecting.add(name="Harbour Square", platform_name="square", given={},
                                timezone="Europe/London", language=None)
        with database.session() as db:
            key = db.get(Clinic, harbour.clinic_id).key
            square_key = db.get(Clinic, square.clinic_id).key
        admins.invite("dana@harbour.example", clinic_key=key)
    pages = Pages()
    clinic_url = f"{base}/admin/clinics/{key}"

    with browser.browser() as chromium:
        page = browser.new_page(chromium)

        # --- invited: the emailed link signs Dana in ----------------------------------
        (invitation,) = mailbox.to("dana@harbour.example")
        link = console.link_in(invitation)
        assert link.startswith(f"{base}/admin/sign-in/")
        page.goto(link)
        pages.check(page, "sign-in-link")
        submit(page.get_by_role("button", name="Sign in"))
        page.wait_for_url(f"{clinic_url}/")
        page.goto(link)  # the same link again: spent
        assert "no longer works" in page.content()
        pages.check(page, "sign-in-link-used")

        # --- connect: the webhook URL, its secret revealed, then rotated ---------------
        page.goto(f"{clinic_url}/")
        assert page.locator("#webhook-url").input_value() == f"{base}/webhooks/generic/{key}"
        page.get_by_text("Show the webhook secret").click()
        first_secret = page.locator("#secret-1").input_value()
        assert first_secret == harbour.shown["webhook_secret"]
        pages.check(page, "connection")
        submit(page.get_by_role("button", name="Make a new secret"))
        new_secret = page.locator("#new-secret").input_value()
        assert new_secret != first_secret
        pages.check(page, "connection-rotated")
        submit(page.get_by_role("button", name="Accept only the newest"))
        assert "Only the newest webhook secret" in page.content()
        refused = signed_post(f"{base}/webhooks/generic/{key}", first_secret, event_body())
        assert refused.status_code == 401

        # --- settings: a refusal next to its field, then the real change --------------
        submit(page.get_by_role("link", name="Settings"))
        pages.check(page, "settings")
        page.fill("#f-window_start", "20:00")
        page.fill("#f-window_end", "09:00")
        submit(page.get_by_role("button", name="Save the settings"))
        assert "is not after its start" in page.locator("#f-window_end-error").inner_text()
        pages.check(page, "settings-refused")
        page.fill("#f-send_delay_minutes", "0")
        page.fill("#f-window_start", "00:00")
        page.fill("#f-window_end", "24:00")
        page.fill("#f-sender_name", "Harbour front desk")
        page.fill("#f-reply_to", "desk@harbour.example")
        submit(page.get_by_role("button", name="Save the settings"))
        assert "Saved." in page.locator(".notice.done").inner_text()
        assert page.locator("#f-sender_name").input_value() == "Harbour front desk"

        # --- a test check-in to herself, seen on the health page -----------------------
        submit(page.get_by_role("link", name="Health"))
        submit(page.get_by_role("button", name="Send a test check-in"))
        assert "A test check-in went to dana@harbour.example" in page.content()
        test_email = mailbox.to("dana@harbour.example")[-1]
        assert test_email["From"].addresses[0].display_name == "Harbour front desk"
        assert test_email["Reply-To"] == "desk@harbour.example"
        with app.app_context():
            instrument = instruments.get("rapport-checkin")
        # Answered with the worst scores: counted anywhere, it would sink every figure.
        assert answer(app.test_client(), survey_path(test_email),
                      answers_for(instrument, 1)).status_code == 200
        page.reload()
        tests_table = page.locator("table", has=page.locator("caption", has_text="Your latest"))
        assert "answered" in tests_table.inner_text()
        assert table_row(page, "Events, check-ins", "Check-ins sent") == ["0", "0"]
        pages.check(page, "health-test-sent")

        # --- the clinic's visits come in; clients answer, one lets it expire ----------
        url = f"{base}/webhooks/generic/{key}"
        for number, (client, (therapist, _)) in enumerate(VISITS.items()):
            # Told of as it ended, as a booking system does (a visit told of only long
            # after it ended gets no check-in).
            body = event_body(appointment_id=f"A-{number}", client_id=client,
                              email=f"{client.lower()}@example.com", first_name=client,
                              therapist=therapist, end=END, occurred_at=END)
            assert signed_post(url, new_secret, body).status_code == 202
        for client, days in REBOOKED_AFTER_DAYS.items():
            body = event_body("appointment.booked", appointment_id=f"B-{client}",
                              client_id=client, email=f"{client.lower()}@example.com",
                              therapist=DANA, end=END + timedelta(days=days, hours=1))
            assert signed_post(url, new_secret, body).status_code == 202
        for kind in ("appointment.booked", "appointment.cancelled"):  # not a rebooking
            body = event_body(kind, appointment_id="B-C-3x", client_id="C-3",
                              email="c-3@example.com", end=END + timedelta(days=10, hours=1))
            assert signed_post(url, new_secret, body).status_code == 202
        drain()
        callback_receiver.answer(410)  # the first note delivered is refused for good
        for client, (_, value) in VISITS.items():
            (email,) = mailbox.to(f"{client.lower()}@example.com")
            if isinstance(value, int):
                assert answer(app.test_client(), survey_path(email),
                              answers_for(instrument, value)).status_code == 200
        with app.app_context(), database.session() as db:
            db.execute(update(CheckIn).where(CheckIn.client_external_id == "C-8")
                       .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
        with app.app_context():
            sweeper.sweep()
        drain()
        assert len(callback_receiver.received) == 7

        # --- health: the refused note needs attention; retried from the page ----------
        page.reload()
        assert table_row(page, "Events, check-ins", "Check-ins sent")[0] == "9"
        attention = page.locator(".attention")
        assert "Failed: Rapport stopped trying" in attention.inner_text()
        assert "answered 410" in attention.inner_text()
        pages.check(page, "health-attention")
        submit(page.get_by_role("button", name=re.compile("^Retry now")).first)
        assert "Queued again" in page.content()
        drain()
        page.reload()
        assert "None: every note was delivered" in page.content()
        assert len(callback_receiver.received) == 8
        pages.check(page, "health")

        # --- the dashboard says what was sent, answered and booked ---------------------
        submit(page.get_by_role("link", name="Dashboard"))
        month = datetime.now(ZoneInfo("Europe/London")).strftime("%Y-%m")
        assert table_row(page, "Check-ins per month", month)[:3] == ["9", "7", "1"]
        with app.app_context(), database.session() as db:
            answered = {row.client_external_id: row for row in db.scalars(
                select(Response).join(CheckIn).where(CheckIn.test.is_(False)))}
            bands = {client: row.result["summary"]["scores"]["band"]
                     for client, row in answered.items()}
        assert sorted(answered) == [f"C-{n}" for n in range(1, 8)]
        normalized = {client: (value - 1) * 25.0 for client, (_, value) in VISITS.items()
                      if isinstance(value, int)}
        assert {client: row.overall for client, row in answered.items()} == normalized
        median = statistics.median(normalized.values())
        assert table_row(page, "Median score", month)[:2] == ["7", f"{median:.1f}"]
        dana = statistics.median(normalized[c] for c in ("C-1", "C-2", "C-3", "C-4", "C-5"))
        assert table_row(page, "per therapist", "Dana") == ["5", f"{dana:.1f}"]
        assert table_row(page, "per therapist", "Lee") == ["2", "Not enough answers yet"]
        flagged = page.locator("table", has=page.locator("caption", has_text="dropped"))
        assert "C-7" in flagged.inner_text() and "C-1" not in flagged.inner_text()

        expected: dict[str, dict] = {}
        labels = {"needs-attention": "Needs attention", "some-concerns": "Some concerns",
                  "working-well": "Working well"}
        for client, band in bands.items():
            row = expected.setdefault(labels[band["id"]], {"clients": 0, 30: 0, 60: 0, 90: 0})
            row["clients"] += 1
            for days in (30, 60, 90):
                row[days] += REBOOKED_AFTER_DAYS.get(client, 999) <= days
        for label, row in expected.items():
            cells = table_row(page, "Clients who booked again", label)
            assert cells[0] == str(row["clients"])
            for cell, days in zip(cells[1:], (30, 60, 90), strict=True):
                share = round(100 * row[days] / row["clients"])
                assert cell == f"{share}% ({row[days]} of {row['clients']})", (label, days)
        assert "association, not proof" in page.content()
        pages.check(page, "dashboard")
        assert page.goto(f"{clinic_url}/dashboard?from=2026-13").status == 400
        assert "YYYY-MM" in page.locator("#period-from-error").inner_text()
        pages.check(page, "dashboard-refused")
        page.goto(f"{clinic_url}/dashboard")

        # --- the export holds the same answers, no addresses ---------------------------
        submit(page.get_by_role("link", name="Export"))
        pages.check(page, "export")
        with page.expect_download() as download:
            page.get_by_role("button", name="Download the CSV").click()
        text = Path(download.value.path()).read_text(encoding="utf-8")
        assert "@" not in text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert {row["client_id"]: float(row["overall"]) for row in rows} == normalized
        assert {row["client_id"]: row["band"] for row in rows} == {
            client: band["id"] for client, band in bands.items()}
        assert {row["therapist_id"] for row in rows} == {"T-2", "T-3"}

        # --- sign out; the console is closed to this browser --------------------------
        submit(page.get_by_role("button", name="Sign out"))
        page.wait_for_url(re.compile(r"/admin/sign-in"))
        pages.check(page, "signed-out")
        page.goto(f"{clinic_url}/health")
        assert "/admin/sign-in" in page.url

        # --- signing in again from the sign-in page ------------------------------------
        page.fill("#email", "dana@harbour.example")
        submit(page.get_by_role("button", name="Email me a sign-in link"))
        assert "Check your email" in page.content()
        pages.check(page, "sign-in-sent")
        drain()
        page.goto(console.link_in(mailbox.to("dana@harbour.example")[-1]))
        submit(page.get_by_role("button", name="Sign in"))
        page.wait_for_url(f"{clinic_url}/health")  # back where she was going

        # --- an operator connects the Square clinic through the stand-in --------------
        with app.app_context():
            operator_link = admins.invite("ops@rapport.example", clinic_key=None,
                                          operator=True, send=False).url
        ops = browser.new_page(chromium)
        ops.goto(f"{base}/connect/square/{square_key}")
        assert "/admin/sign-in" in ops.url  # the connect link needs someone signed in
        pages.check(ops, "sign-in")
        ops.goto(operator_link)
        submit(ops.get_by_role("button", name="Sign in"))
        ops.wait_for_url(f"{base}/admin/")
        pages.check(ops, "clinics")
        submit(ops.get_by_role("link", name="Harbour Square"))
        assert "Not connected yet" in ops.content()
        pages.check(ops, "connection-square")
        submit(ops.get_by_role("link", name="Connect Square"))
        ops.wait_for_load_state()
        assert "Square is connected" in ops.content()
        submit(ops.get_by_role("link", name="Back to the clinic's page"))
        assert "Connected" in ops.locator("#status-title").inner_text()
        pages.check(ops, "connection-square-connected")
        with app.app_context(), database.session() as db:
            clinic = records.by_key(db, square_key)
            assert (clinic.status, clinic.account_id) == ("active", square_sandbox.merchant_id)

        # A clinic connected with keys gets a form of its platform's fields.
        with app.app_context(), database.session() as db:
            records.create(db, name="Harbour by hand", platform="square", key="by-hand",
                           credentials=square_credentials(
                               access_token=square_sandbox.personal_access_token,
                               webhook_signature_key="key-1",
                               notification_url=f"{base}/webhooks/square/by-hand"))
        ops.goto(f"{base}/admin/clinics/by-hand/")
        pages.check(ops, "connection-keys")
        submit(ops.get_by_role("button", name="Save the new credentials"))
        assert "Give at least one new value" in ops.locator(".field-error").inner_text()
        pages.check(ops, "connection-keys-refused")
        ops.fill("#f-add_signature_key", "key-2")
        submit(ops.get_by_role("button", name="Save the new credentials"))
        assert "2 signature key(s) accepted" in ops.locator(".notice.done").inner_text()

        # Dana's browser may not open the Square clinic, nor its connect link.
        assert page.goto(f"{base}/admin/clinics/{square_key}/").status == 404
        assert page.goto(f"{base}/connect/square/{square_key}").status == 404

    print("\nScreenshots in", browser.CONSOLE_SCREENSHOTS, ":", ", ".join(pages.shot))
    assert pages.violations == {}, json.dumps(pages.violations, indent=2)
