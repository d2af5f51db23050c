"""tests/sandboxes/acuity.py: the stand-in refuses what Acuity would (in Acuity's error shape),
keeps its own answers inside the specification, and delivers webhooks as Acuity does."""

from __future__ import annotations

import pytest
import requests

from handlers import acuity
from handlers.base import InboundRequest
from tests.sandboxes.acuity import AcuitySandbox

pytestmark = pytest.mark.acuity_refusals


def _put(stand_in, path, body=None, *, auth=None, params=None, data=None):
    return requests.put(stand_in.base_url + path, json=body, data=data, params=params,
                        auth=auth or (stand_in.user_id, stand_in.api_key), timeout=5)


def test_wrong_basic_auth_is_401_in_acuitys_shape(acuity_stand_in):
    answer = requests.get(acuity_stand_in.base_url + "/api/v1/me",
                          auth=(acuity_stand_in.user_id, "wrong"), timeout=5)
    assert answer.status_code == 401
    assert answer.json() == {"status_code": 401, "error": "unauthorized",
                             "message": "Unauthorized"}
    assert requests.get(acuity_stand_in.base_url + "/api/v1/me", timeout=5).status_code == 401


@pytest.mark.parametrize(("body", "field"), [
    ({"notes": "x", "status": "done"}, "unknown field"),
    ({"notes": 5}, "notes"),
    ({"labels": "VIP"}, "labels"),
])
def test_a_body_the_specification_refuses_is_400_and_recorded(body, field, acuity_stand_in):
    visit = acuity_stand_in.seed_appointment(start="2026-11-25T15:00:00Z", notes="Mine.")
    answer = _put(acuity_stand_in, f"/api/v1/appointments/{visit['id']}", body,
                  params={"admin": "true"})
    assert answer.status_code == 400 and answer.json()["status_code"] == 400
    assert field in answer.json()["message"]
    assert len(acuity_stand_in.rejected) == 1
    assert acuity_stand_in.appointment(visit["id"])["notes"] == "Mine."


def test_notes_only_as_an_admin(acuity_stand_in):
    visit = acuity_stand_in.seed_appointment(start="2026-11-25T15:00:00Z")
    answer = _put(acuity_stand_in, f"/api/v1/appointments/{visit['id']}", {"notes": "x"})
    assert answer.status_code == 400 and answer.json()["error"] == "not_admin"


def test_a_body_that_is_not_json_is_400(acuity_stand_in):
    answer = _put(acuity_stand_in, "/api/v1/clients", data="notes=x",
                  params={"firstName": "Sam", "lastName": "Rivera"})
    assert answer.json() == {"status_code": 400, "error": "bad_request",
                             "message": "Expected a JSON object."}


def test_unknown_paths_and_methods(acuity_stand_in):
    auth = (acuity_stand_in.user_id, acuity_stand_in.api_key)
    assert requests.get(acuity_stand_in.base_url + "/api/v1/nothing", auth=auth,
                        timeout=5).status_code == 404
    assert requests.delete(acuity_stand_in.base_url + "/api/v1/me", auth=auth,
                           timeout=5).status_code == 405


def test_client_search_reads_words_as_acuitys_client_list_does(acuity_stand_in):
    acuity_stand_in.seed_client(first_name="Sam", last_name="Rivera", email="sam@a.example",
                                phone="(555) 010-0100")
    acuity_stand_in.seed_client(first_name="Samantha", last_name="Lee", email="sl@b.example")
    acuity_stand_in.seed_client(first_name="Ana", last_name="van Dijk", email="ana@c.example")

    def names(search):
        found = requests.get(acuity_stand_in.base_url + "/api/v1/clients",
                             params={"search": search} if search is not None else None,
                             auth=(acuity_stand_in.user_id, acuity_stand_in.api_key),
                             timeout=5).json()
        return sorted(c["firstName"] for c in found)

    assert names(None) == ["Ana", "Sam", "Samantha"]
    assert names("sam") == ["Sam", "Samantha"]
    assert names("Sam Rivera") == ["Sam"]
    assert names("Ana van Dijk") == ["Ana"]
    assert names("b.example") == ["Samantha"]
    assert names("0100") == ["Sam"]


def test_clients_are_updated_by_name_and_phone(acuity_stand_in):
    acuity_stand_in.seed_client(phone="555-0100")
    acuity_stand_in.seed_client(email="other@example.com", phone="555-0199")
    answer = _put(acuity_stand_in, "/api/v1/clients", {"notes": "Second Sam."},
                  params={"firstName": "sam", "lastName": "RIVERA", "phone": "555-0199"})
    assert answer.json()["email"] == "other@example.com"
    assert [c["notes"] for c in acuity_stand_in.clients] == ["", "Second Sam."]
    missing = _put(acuity_stand_in, "/api/v1/clients", {"notes": "x"},
                   params={"firstName": "Nobody", "lastName": "Here"})
    assert missing.json()["error"] == "client_not_found"


def test_webhooks_acuity_would_refuse(acuity_stand_in):
    auth = (acuity_stand_in.user_id, acuity_stand_in.api_key)

    def create(event, target):
        return requests.post(acuity_stand_in.base_url + "/api/v1/webhooks", auth=auth,
                             json={"event": event, "target": target}, timeout=5).json()

    assert create("appointment.scheduled", "https://x.example:8443/h")["error"] == \
        "invalid_target"
    assert create("appointment.completed", "https://x.example/h")["error"] == "invalid_event"
    for n in range(25):
        assert create("appointment.changed", f"https://x{n}.example/h")["status"] == "active"
    assert create("appointment.changed", "https://y.example/h")["error"] == "webhook_limit"


def test_answers_outside_the_specification_fail_the_test_that_caused_them():
    stand_in = AcuitySandbox().start()
    stand_in.put_appointment({"id": 7, "datetime": "2026-11-25T10:00:00-0500",
                              "duration": "60", "canceled": "no"})
    answer = requests.get(stand_in.base_url + "/api/v1/appointments/7", timeout=5,
                          auth=(stand_in.user_id, stand_in.api_key))
    assert answer.status_code == 200
    with pytest.raises(AssertionError, match="canceled"):
        stand_in.__exit__(None, None, None)


def test_notify_delivers_each_event_to_its_webhooks_signed(acuity_stand_in, callback_receiver):
    visit = acuity_stand_in.seed_appointment(start="2026-11-25T15:00:00Z")
    # Registered directly: the receiver listens on a port Acuity itself would refuse.
    acuity_stand_in.webhooks += [
        {"id": 90, "event": "appointment.canceled", "target": callback_receiver.url,
         "status": "active"},
        {"id": 91, "event": "appointment.scheduled", "target": callback_receiver.url,
         "status": "active"},
    ]
    acuity_stand_in.cancel(visit["id"])
    assert [r.status_code for r in acuity_stand_in.notify("canceled", visit["id"])] == [204]
    [arrived] = callback_receiver.received
    assert arrived.body == (f"action=canceled&id={visit['id']}&calendarID=27238"
                            "&appointmentTypeID=1").encode()
    request = InboundRequest(body=arrived.body, headers=arrived.headers)
    acuity.verify(request, acuity_stand_in.credentials())
    assert acuity.parse(request)[0].status == "cancelled"
