"""The webhook receiver under garbage and abuse: a signed body is never answered 500
(platforms retry a 500 for days), and an address sending unsigned requests is slowed."""

from __future__ import annotations

import json
from pathlib import Path

from handlers.square import webhooks as square
from plugin.web import limits
from tests.support.generic import event_body, webhook_path
from tests.support.generic import sign_generic as signed

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DEEP = b"[" * 100_000 + b"]" * 100_000
YEAR_9999 = "9999-12-31T23:59:59-05:00"
REVOKED = json.loads((FIXTURES / "square" / "oauth.authorization.revoked__by_merchant.json")
                     .read_text())


def changed(document: dict, path: tuple, value) -> bytes:
    copy = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(copy).encode()


def test_signed_garbage_gets_400_naming_the_field(web, generic_clinic):
    deep = b'{"type": "appointment.completed", "data": ' + DEEP + b"}"
    answer = web.post(webhook_path(generic_clinic), data=deep, headers=signed(deep, generic_clinic))
    assert (answer.status_code, answer.get_json()["field"]) == (400, "body")

    body = json.loads(event_body())
    body["data"]["appointment"]["end"] = YEAR_9999
    body = json.dumps(body).encode()
    answer = web.post(webhook_path(generic_clinic), data=body, headers=signed(body, generic_clinic))
    assert (answer.status_code, answer.get_json()["field"]) == (400, "data.appointment.end")


def test_a_lone_surrogate_is_refused_at_the_door_not_stored(web, generic_clinic):
    body = json.loads(event_body())
    body["data"]["client"]["first_name"] = "Sam\ud800"
    body = json.dumps(body).encode()  # "\\ud800": valid JSON, not text
    answer = web.post(webhook_path(generic_clinic), data=body, headers=signed(body, generic_clinic))
    assert (answer.status_code, answer.get_json()["field"]) == (400, "data.client.first_name")


def test_a_visit_ending_in_year_2500_is_refused_at_the_door(web, generic_clinic):
    body = json.loads(event_body())
    body["data"]["appointment"]["start"] = "2500-01-01T10:00:00Z"
    body["data"]["appointment"]["end"] = "2500-01-01T11:00:00Z"
    body = json.dumps(body).encode()
    answer = web.post(webhook_path(generic_clinic), data=body, headers=signed(body, generic_clinic))
    assert answer.status_code == 400
    assert answer.get_json()["field"] == "data.appointment.start"


def test_a_square_revocation_with_a_list_for_data_is_acknowledged(monkeypatch, app_factory):
    monkeypatch.setenv("RAPPORT_SQUARE_WEBHOOK_SIGNATURE_KEY", "application-key")
    app = app_factory()
    body = changed(REVOKED, ("data",), [1])
    headers = square.sign(body, signature_key="application-key",
                          notification_url="http://rapport.test/webhooks/square")
    answer = app.test_client().post("/webhooks/square", data=body, headers=headers)
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ignored", "reason": "unknown account"}


def test_an_address_sending_bad_signatures_is_answered_429_then_only(app_factory,
                                                                     generic_clinic_factory):
    app = app_factory(RATE_LIMIT_WEBHOOK_REFUSALS=3)
    # The limit counts per minute of its clock: one minute, held, whatever the machine's pace.
    limits.limits(app)["webhook_refusals"].clock = lambda: 600.0
    target = generic_clinic_factory()
    client = app.test_client()
    body = event_body()
    forged = {**signed(body, target), "webhook-signature": "v1,Zm9yZ2Vk"}
    codes = [client.post(webhook_path(target), data=body, headers=forged).status_code
             for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    # Another address is not slowed, and this one's signed deliveries are refused only
    # for the rest of the minute: the answer says when to come back.
    other = client.post(webhook_path(target), data=body, headers=signed(body, target),
                        environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert other.status_code == 202
    blocked = client.post(webhook_path(target), data=body, headers=signed(body, target))
    assert blocked.status_code == 429 and 1 <= int(blocked.headers["Retry-After"]) <= 60


def test_accepted_deliveries_never_count_against_the_address(app_factory, generic_clinic_factory):
    app = app_factory(RATE_LIMIT_WEBHOOK_REFUSALS=2)
    target = generic_clinic_factory()
    client = app.test_client()
    codes = set()
    for number in range(6):
        body = event_body(appointment_id=f"A-{number}")
        codes.add(client.post(webhook_path(target), data=body,
                              headers=signed(body, target)).status_code)
    assert codes == {202}
