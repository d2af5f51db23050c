"""Opting out follows the person, not the platform's client id, and one address gets
at most so many check-ins (finding: opt-out follows the platform's client id)."""

from __future__ import annotations

from sqlalchemy import select

from plugin.store import database
from plugin.store.models import CheckIn, OptOut, OptOutAddress
from tests.support.generic import event_body, webhook_path
from tests.support.generic import sign_generic as signed
from tests.support.survey import survey_path


def deliver_visit(web, generic_clinic, number: int, client_id: str, email: str):
    body = event_body(appointment_id=f"A-{number}", client_id=client_id, email=email)
    assert web.post(webhook_path(generic_clinic), data=body,
                       headers=signed(body, generic_clinic)).status_code == 202


def test_after_unsubscribing_a_duplicate_profile_gets_nothing(app, web, generic_clinic, drain,
                                                              mailbox):
    deliver_visit(web, generic_clinic, 1, "U-1", "sam@example.com")
    drain()
    assert len(mailbox.messages) == 1
    link = survey_path(mailbox.messages[0])
    assert web.post(f"{link}/unsubscribe").status_code == 200
    # The same person, filed under another profile, in another case.
    deliver_visit(web, generic_clinic, 2, "U-2", "Sam@Example.COM")
    drain()
    assert len(mailbox.messages) == 1
    with app.app_context(), database.session() as db:
        skipped = db.scalar(select(CheckIn).where(CheckIn.client_external_id == "U-2"))
        assert skipped.status == "skipped" and "opted out" in skipped.reason
        # Only a keyed hash of the address is kept, never the address.
        hashes = list(db.scalars(select(OptOutAddress.address_hash)))
        assert len(hashes) == 1 and "@" not in hashes[0] and len(hashes[0]) == 64
        assert db.scalar(select(OptOut.client_external_id)) == "U-1"


def test_one_address_gets_at_most_the_limit_whatever_the_profiles(app_factory,
                                                                   generic_clinic_factory, drain,
                                                                   mailbox):
    app = app_factory(ADDRESS_CHECK_IN_LIMIT=2)
    clinic = generic_clinic_factory()
    client = app.test_client()
    for number in range(5):
        deliver_visit(client, clinic, number, f"P-{number}", "victim@example.com")
    from tests.support.clock import drainer

    drainer(app)()
    assert len(mailbox.to("victim@example.com")) == 2
    with app.app_context(), database.session() as db:
        reasons = [row.reason for row in db.scalars(select(CheckIn).where(
            CheckIn.status == "skipped"))]
    assert len(reasons) == 3 and all("ADDRESS_CHECK_IN_LIMIT" in r for r in reasons)
