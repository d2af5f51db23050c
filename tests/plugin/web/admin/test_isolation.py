"""An admin never sees or changes another clinic: every console page and action, tried
with another clinic's key (or another clinic's write-back), answers 404 and changes
nothing."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from plugin.clinics import records
from plugin.store import database
from plugin.store.models import CheckIn, Clinic, WriteBack
from tests.support import clinic_data, console

NOW = datetime.now(timezone.utc).replace(microsecond=0)

PAGES = ("/", "/settings", "/health", "/dashboard", "/export", "/export.csv",
         "/dashboard?from=2026-01&to=2026-06", "/export.csv?from=2026-01&to=2026-06")


def snapshot(app, clinic_id: int) -> dict:
    with app.app_context(), database.session() as db:
        clinic = db.get(Clinic, clinic_id)
        return {
            "clinic": (clinic.name, clinic.timezone, clinic.language, clinic.status,
                       dict(clinic.settings or {}), records.credentials(clinic)),
            "check_ins": [(c.id, c.status, c.test) for c in db.scalars(
                select(CheckIn).where(CheckIn.clinic_id == clinic_id))],
            "write_backs": [(w.id, w.status, w.last_error, w.next_attempt_at) for w in db.scalars(
                select(WriteBack).where(WriteBack.clinic_id == clinic_id))],
        }


@pytest.fixture
def two_clinics(app, generic_clinic_factory):
    """Ours, whose admin is signed in, and theirs, with a failed write-back."""
    ours, theirs = generic_clinic_factory(), generic_clinic_factory()
    with app.app_context(), database.session() as db:
        target = records.by_key(db, theirs["key"])
        response = clinic_data.answered_visit(db, target.id, "C-9", NOW - timedelta(days=2), 8)
        failed = clinic_data.write_back(db, response)
        theirs["clinic_id"], theirs["write_back_id"] = target.id, failed.id
    return ours, theirs


@pytest.fixture
def signed_in(app, web, two_clinics):
    ours, _ = two_clinics
    return console.sign_in(app, web, "dana@harbour.example", ours["key"])


@pytest.mark.parametrize("page", PAGES)
def test_every_page_of_another_clinic_is_404(app, signed_in, two_clinics, page, caplog):
    caplog.set_level(logging.INFO)
    ours, theirs = two_clinics
    assert signed_in.get(f"/admin/clinics/{ours['key']}{page}").status_code == 200
    answer = signed_in.get(f"/admin/clinics/{theirs['key']}{page}")
    assert answer.status_code == 404
    assert theirs["key"] not in answer.get_data(as_text=True)
    assert "admin.other-clinic" in caplog.text


def actions(theirs: dict) -> list[tuple[str, dict]]:
    return [
        ("/secrets", {"action": "rotate"}),
        ("/secrets", {"action": "retire"}),
        ("/credentials", {"api_key": "new-key"}),
        ("/settings", {"name": "Taken over", "timezone": "Asia/Tokyo", "language": "fr",
                       "send_delay_minutes": "1", "window_start": "00:00",
                       "window_end": "24:00", "reminder_after_hours": "1",
                       "expire_after_days": "1", "quiet_days": "0",
                       "completion_grace_minutes": "0", "early_instrument": "rapport-pulse",
                       "early_visits": "0", "later_instrument": "rapport-pulse",
                       "drop_threshold": "1", "low_subscale_threshold": "1",
                       "sender_name": "Someone else", "reply_to": "x@evil.example"}),
        ("/test", {}),
        (f"/write-backs/{theirs['write_back_id']}/retry", {}),
        ("/write-backs/retry", {}),
        ("/callback", {"callback_url": "https://93.184.216.34/taken-over"}),
        ("/callback-secrets", {"action": "rotate"}),
        ("/callback-secrets", {"action": "retire"}),
        ("/test-event", {}),
    ]


def test_the_actions_tried_are_every_action_a_clinic_page_has(app, two_clinics):
    """A new action on a clinic's pages is tried here too, or this fails."""
    _, theirs = two_clinics
    routes = {rule.rule.removeprefix("/admin/clinics/<key>") for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/admin/clinics/<key>") and "POST" in rule.methods}
    tried = {path.replace(str(theirs["write_back_id"]), "<int:write_back_id>")
             for path, _ in actions(theirs)}
    assert routes == tried


def test_every_action_on_another_clinic_is_404_and_changes_nothing(app, signed_in,
                                                                    two_clinics, mailbox,
                                                                    redis_conn):
    ours, theirs = two_clinics
    before = snapshot(app, theirs["clinic_id"])
    token = console.token_of(signed_in.get(f"/admin/clinics/{ours['key']}/").get_data(
        as_text=True))
    for path, fields in actions(theirs):
        answer = signed_in.post(f"/admin/clinics/{theirs['key']}{path}",
                                data={"csrf_token": token, **fields})
        assert answer.status_code == 404, path
    assert snapshot(app, theirs["clinic_id"]) == before
    assert mailbox.messages == []  # no test check-in went anywhere
    assert redis_conn.zcard("rq:scheduled:rapport") == 0
    assert not any(b"deliver_write_back" in key for key in redis_conn.keys("rq:job:*"))


def test_another_clinics_write_back_under_our_key_is_404(app, signed_in, two_clinics):
    ours, theirs = two_clinics
    before = snapshot(app, theirs["clinic_id"])
    answer = console.post_form(signed_in, f"/admin/clinics/{ours['key']}/health",
                               f"/admin/clinics/{ours['key']}/write-backs/"
                               f"{theirs['write_back_id']}/retry")
    assert answer.status_code == 404
    assert snapshot(app, theirs["clinic_id"]) == before


def test_our_own_actions_work_without_touching_theirs(app, signed_in, two_clinics):
    ours, theirs = two_clinics
    before = snapshot(app, theirs["clinic_id"])
    answer = console.post_form(signed_in, f"/admin/clinics/{ours['key']}/",
                               f"/admin/clinics/{ours['key']}/secrets", action="rotate")
    assert answer.status_code == 200 and "New webhook secret" in answer.get_data(as_text=True)
    assert snapshot(app, theirs["clinic_id"]) == before


def test_every_action_without_a_form_token_is_refused(app, signed_in, two_clinics):
    ours, theirs = two_clinics
    with app.app_context(), database.session() as db:
        ours_id = records.by_key(db, ours["key"]).id
    before = snapshot(app, ours_id)
    for path, fields in actions(theirs):
        if "write-backs/" in path and "retry" in path and path != "/write-backs/retry":
            path = "/write-backs/1/retry"
        answer = signed_in.post(f"/admin/clinics/{ours['key']}{path}", data=fields)
        assert answer.status_code == 400, path
    assert snapshot(app, ours_id) == before


def test_the_connect_link_of_another_clinic_is_404(app_factory, redis_conn):
    app = app_factory(SQUARE_APPLICATION_ID="app-id", SQUARE_APPLICATION_SECRET="secret")
    with app.app_context(), database.session() as db:
        ours = records.create(db, name="Ours", platform="generic", credentials={
            "inbound_secrets": ["whsec_a"], "outbound_secret": "whsec_b",
            "callback_url": "https://booking.example/hook"}).clinic.key
        theirs = records.create(db, name="Theirs", platform="square",
                                credentials={"mode": "oauth"}, status="not_connected")
        theirs_key = theirs.clinic.key
    client = console.sign_in(app, app.test_client(), "dana@harbour.example", ours)
    assert client.get(f"/connect/square/{theirs_key}").status_code == 404
    stranger = app.test_client()
    answer = stranger.get(f"/connect/square/{theirs_key}")
    assert answer.status_code == 302 and "/admin/sign-in" in answer.headers["Location"]
    operator = console.sign_in(app, app.test_client(), "ops@rapport.example", operator=True)
    assert operator.get(f"/connect/square/{theirs_key}").status_code == 302
