"""A connected Square clinic's tokens: renewed a week into their life (once, however many
jobs find them due), a refused renewal or a revoked sign-in marking the clinic, and
connecting again resuming what waited."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from plugin.clinics import platforms as accounts
from plugin.clinics import records as clinics
from plugin.store import database as storage
from plugin.store.models import Clinic, WriteBack
from tests.support.square import NOW, connect, ended_visit, stored_token, to_application
from tests.support.survey import answer_last_check_in


def age_token(app, key: str, *, days_left: int, revoke=None) -> str:
    """Make the clinic's stored access token look older; its value before."""
    with app.app_context(), storage.session() as db:
        clinic = clinics.by_key(db, key)
        values = clinics.credentials(clinic)
        if revoke:
            revoke(values["access_token"])
        values["expires_at"] = (NOW + timedelta(days=days_left)).isoformat()
        clinics.store_credentials(clinic, values)
        return values["access_token"]


def test_tokens_are_renewed_a_week_into_their_life(square_app, square_sandbox, square_oauth_clinic):
    app, url = square_app
    connect(url, square_oauth_clinic["key"])
    old_token = age_token(app, square_oauth_clinic["key"], days_left=22)  # 8 days old
    with app.app_context():
        with storage.session() as db:
            clinic = clinics.by_key(db, square_oauth_clinic["key"])
        fresh = accounts.credentials_for(clinic)
        assert fresh["access_token"] != old_token
        with storage.session() as db:
            assert (
                clinics.credentials(clinics.by_key(db, square_oauth_clinic["key"]))["access_token"]
                == fresh["access_token"]
            )
    grants = [r.json["grant_type"] for r in square_sandbox.requests_to("POST", "/oauth2/token")]
    assert grants == ["authorization_code", "refresh_token"]


def test_two_jobs_finding_the_token_due_renew_it_once(square_app, square_sandbox,
                                                      square_oauth_clinic):
    app, url = square_app
    connect(url, square_oauth_clinic["key"])
    age_token(app, square_oauth_clinic["key"], days_left=22)
    with app.app_context():
        with storage.session() as db:
            read_before = clinics.by_key(db, square_oauth_clinic["key"])  # both jobs read it due
        renewals = len(square_sandbox.requests_to("POST", "/oauth2/token"))
        first = accounts.credentials_for(read_before)
        second = accounts.credentials_for(read_before)
    assert len(square_sandbox.requests_to("POST", "/oauth2/token")) == renewals + 1
    assert second["access_token"] == first["access_token"]


def test_a_refused_refresh_marks_the_clinic_needs_reconnecting(
    square_app, square_sandbox, square_oauth_clinic
):
    app, url = square_app
    connect(url, square_oauth_clinic["key"])
    age_token(app, square_oauth_clinic["key"], days_left=1, revoke=square_sandbox.revoke)
    with app.app_context():
        assert accounts.refresh_tokens() == 1
        with storage.session() as db:
            assert clinics.by_key(db, square_oauth_clinic["key"]).status == "needs_reconnecting"


def test_square_out_of_reach_at_refresh_leaves_the_clinic_connected(
    square_app, square_sandbox, square_oauth_clinic
):
    app, url = square_app
    connect(url, square_oauth_clinic["key"])
    old_token = age_token(app, square_oauth_clinic["key"], days_left=22)
    square_sandbox.fail_next("/oauth2/token", 503)
    with app.app_context():
        assert accounts.refresh_tokens() == 1
        with storage.session() as db:
            clinic = clinics.by_key(db, square_oauth_clinic["key"])
            assert clinic.status == "active"
            assert clinics.credentials(clinic)["access_token"] == old_token
        accounts.refresh_tokens()  # the next run renews it
        with storage.session() as db:
            renewed = clinics.credentials(clinics.by_key(db, square_oauth_clinic["key"]))
            assert renewed["access_token"] != old_token


def test_reconnecting_resumes_paused_write_backs(
    square_app, square_sandbox, square_oauth_clinic, square_drain, mailbox
):
    app, url = square_app
    connect(url, square_oauth_clinic["key"])
    customer, event = ended_visit(square_sandbox)
    to_application(square_sandbox, url, event)
    square_drain()
    square_sandbox.revoke(stored_token(app, square_oauth_clinic["key"]))  # disconnected in Square
    answer_last_check_in(app, mailbox, 4)
    square_drain()
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(Clinic.status)) == "needs_reconnecting"
        assert db.scalar(select(WriteBack.status)) == "paused"
    assert connect(url, square_oauth_clinic["key"]).status_code == 200
    square_drain()
    with app.app_context(), storage.session() as db:
        assert db.scalar(select(Clinic.status)) == "active"
        assert db.scalar(select(WriteBack.status)) == "delivered"
    assert square_sandbox.customer(customer["id"])["note"].count("[Rapport]") == 1


def test_reconnecting_with_another_square_account_is_refused(
    square_app, square_sandbox, square_oauth_clinic
):
    app, url = square_app
    assert connect(url, square_oauth_clinic["key"]).status_code == 200
    token = stored_token(app, square_oauth_clinic["key"])
    square_sandbox.merchant_id = "MLSOMEONEELSE"  # the admin signs in as another business
    page = connect(url, square_oauth_clinic["key"])
    assert page.status_code == 400
    assert "connected to the Square account MLRAPPORT0001" in page.text
    assert "Nothing was changed" in page.text
    with app.app_context(), storage.session() as db:
        clinic = clinics.by_key(db, square_oauth_clinic["key"])
        assert (clinic.account_id, clinic.status) == ("MLRAPPORT0001", "active")
    assert stored_token(app, square_oauth_clinic["key"]) == token


def test_reconnecting_keeps_what_the_new_tokens_do_not_replace(
    square_app, square_sandbox, square_oauth_clinic
):
    app, url = square_app
    connect(url, square_oauth_clinic["key"])
    with app.app_context(), storage.session() as db:
        clinic = clinics.by_key(db, square_oauth_clinic["key"])
        clinics.store_credentials(clinic, {**clinics.credentials(clinic),
                                           "location_ids": ["L9R0X9X5SGDBJ"]})
    old_token = stored_token(app, square_oauth_clinic["key"])
    assert connect(url, square_oauth_clinic["key"]).status_code == 200
    with app.app_context(), storage.session() as db:
        stored = clinics.credentials(clinics.by_key(db, square_oauth_clinic["key"]))
    assert stored["location_ids"] == ["L9R0X9X5SGDBJ"]
    assert stored["access_token"] != old_token and stored["mode"] == "oauth"


def test_health_gives_each_mode_its_own_remedy(square_app, square_sandbox, square_oauth_clinic,
                                               square_manual_clinic):
    from plugin.clinics import health

    app, url = square_app
    with app.app_context():
        with storage.session() as db:
            clinics.mark_needs_reconnecting(clinics.by_key(db, "harbour"), "401 from Square")
        with storage.session() as db:
            manual = health.clinic_summary(db, clinics.by_key(db, "harbour"))
            oauth = health.clinic_summary(db, clinics.by_key(db, square_oauth_clinic["key"]))
    assert "connect_url" not in manual
    assert "rapport clinic square harbour --access-token NEW" in manual["remedy"]
    assert oauth["connect_url"] == f"{url}/connect/square/{square_oauth_clinic['key']}"
    assert oauth["connect_url"] in oauth["remedy"]


def test_talking_points_skipped_while_disconnected_reach_the_booking_after_reconnecting(
    square_app, square_sandbox, square_oauth_clinic, square_drain, mailbox
):
    app, url = square_app
    connect(url, square_oauth_clinic["key"])
    customer, event = ended_visit(square_sandbox)
    to_application(square_sandbox, url, event)
    square_drain()
    answer_last_check_in(app, mailbox, 3, "Neck felt tight after.")
    square_drain()  # on the profile; talking points open
    age_token(app, square_oauth_clinic["key"], days_left=1, revoke=square_sandbox.revoke)
    with app.app_context():
        accounts.refresh_tokens()  # Square refuses: the clinic needs reconnecting
    upcoming = square_sandbox.seed_booking(customer_id=customer["id"],
                                           start_at=NOW + timedelta(days=7))
    to_application(square_sandbox, url,
                   square_sandbox.booking_event("booking.created", upcoming["id"]))
    square_drain()
    assert square_sandbox.booking(upcoming["id"])["seller_note"] == ""  # skipped meanwhile
    assert connect(url, square_oauth_clinic["key"]).status_code == 200
    square_drain()
    assert "[Rapport]" in square_sandbox.booking(upcoming["id"])["seller_note"]
