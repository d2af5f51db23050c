"""The local Cliniko refuses what Cliniko's reference refuses, so the adapter's tests
mean something: plain HTTP requests, no adapter code."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import requests

UA = "Rapport (ops@rapport.example)"


def get(sandbox, path, *, key=None, shard="au1", user_agent=UA, params=None):
    headers = {"Accept": "application/json"}
    if user_agent is not None:
        headers["User-Agent"] = user_agent
    key = sandbox.api_key if key is None else key
    if key:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    return requests.get(f"{sandbox.url}/shards/{shard}/v1{path}", headers=headers,
                        params=params, timeout=5)


@pytest.mark.parametrize("user_agent", [None, "", "python-requests/2.32", "Rapport",
                                        "Rapport (nobody)", "(ops@rapport.example)"])
def test_requests_without_a_name_and_contact_email_are_refused(cliniko_sandbox, user_agent):
    answer = get(cliniko_sandbox, "/user", user_agent=user_agent)
    assert answer.status_code == 403
    assert "User-Agent" in answer.json()["message"]
    assert cliniko_sandbox.refused == cliniko_sandbox.requests


def test_authentication(cliniko_sandbox):
    key = cliniko_sandbox.api_key
    assert get(cliniko_sandbox, "/user").status_code == 200
    # The key with or without its shard suffix, as Cliniko's sharding guide says.
    assert get(cliniko_sandbox, "/user", key=key.rsplit("-", 1)[0]).status_code == 200
    assert get(cliniko_sandbox, "/user", key="").status_code == 401
    assert get(cliniko_sandbox, "/user", key="MS0xunknown-au1").status_code == 401
    uk = cliniko_sandbox.add_account("uk1")
    assert get(cliniko_sandbox, "/user", key=uk, shard="uk1").status_code == 200
    assert get(cliniko_sandbox, "/user", key=uk, shard="au1").status_code == 401
    assert get(cliniko_sandbox, "/user", key=key, shard="uk1").status_code == 401


def test_the_201st_request_in_a_minute_is_refused_until_the_minute_passes(cliniko_sandbox):
    session = requests.Session()
    headers = {"User-Agent": UA, "Authorization": "Basic " + base64.b64encode(
        f"{cliniko_sandbox.api_key}:".encode()).decode()}
    url = f"{cliniko_sandbox.url}/shards/au1/v1/user"
    statuses = [session.get(url, headers=headers, timeout=5).status_code for _ in range(201)]
    assert statuses == [200] * 200 + [429]
    throttled = session.get(url, headers=headers, timeout=5)
    reset = int(throttled.headers["X-RateLimit-Reset"])
    assert reset - cliniko_sandbox.clock.now().timestamp() == pytest.approx(61, abs=1)
    cliniko_sandbox.clock.advance(seconds=61)
    assert session.get(url, headers=headers, timeout=5).status_code == 200
    session.close()


def test_lists_hide_cancelled_and_archived_unless_asked(cliniko_sandbox, cliniko_patient):
    now = cliniko_sandbox.clock.now()
    kept, cancelled, archived = cliniko_sandbox.seed_appointments(
        3, patient=cliniko_patient, first_start=now)
    cliniko_sandbox.cancel(cancelled["id"])
    cliniko_sandbox.archive(archived["id"])

    def ids(*filters):
        answer = get(cliniko_sandbox, "/individual_appointments",
                     params=[("q[]", f) for f in filters])
        assert answer.status_code == 200
        return {item["id"] for item in answer.json()["individual_appointments"]}

    assert ids() == {kept["id"]}
    assert ids("cancelled_at:*") == {kept["id"], cancelled["id"]}
    assert ids("cancelled_at:*", "archived_at:*") == {kept["id"], cancelled["id"], archived["id"]}
    assert ids("archived_at:?") == {archived["id"]}


def test_filters_paging_and_sorting(cliniko_sandbox, cliniko_patient):
    now = cliniko_sandbox.clock.now()
    made = cliniko_sandbox.seed_appointments(120, patient=cliniko_patient, first_start=now)
    stamp = f"{now + timedelta(hours=60):%Y-%m-%dT%H:%M:%SZ}"
    first = get(cliniko_sandbox, "/individual_appointments",
                params={"q[]": f"starts_at:>={stamp}", "sort": "id", "per_page": "50"}).json()
    assert first["total_entries"] == 60
    assert [i["id"] for i in first["individual_appointments"]] == [r["id"] for r in made[60:110]]
    assert set(first["links"]) == {"self", "next"}
    second = requests.get(first["links"]["next"], timeout=5, headers={
        "User-Agent": UA, "Authorization": "Basic " + base64.b64encode(
            f"{cliniko_sandbox.api_key}:".encode()).decode()}).json()
    assert [i["id"] for i in second["individual_appointments"]] == [r["id"] for r in made[110:]]
    assert set(second["links"]) == {"self", "previous"}
    record = second["individual_appointments"][0]
    assert record["patient"]["links"]["self"].endswith(f"/patients/{cliniko_patient['id']}")
    assert record["updated_at"].endswith("Z") and "." not in record["updated_at"]


@pytest.mark.parametrize("params", [
    {"q[]": "updated_at:>2026-11-25 10:00"},
    {"q[]": "updated_at:>2026-11-25T10:00:00+01:00"},
    {"q[]": "colour:=blue"},
    {"q[]": "updated_at:=2026-11-25T10:00:00Z"},
    {"q[]": "updated_at:*2026"},
    {"per_page": "101"},
    {"per_page": "0"},
    {"sort": "patient_name"},
])
def test_what_the_reference_does_not_allow_is_refused(cliniko_sandbox, params):
    assert get(cliniko_sandbox, "/individual_appointments", params=params).status_code == 400
    assert len(cliniko_sandbox.refused) == 1


def test_updates_take_json_with_fields_cliniko_has(cliniko_sandbox, cliniko_patient):
    url = f"{cliniko_sandbox.url}/shards/au1/v1/patients/{cliniko_patient['id']}"
    headers = {"User-Agent": UA, "Authorization": "Basic " + base64.b64encode(
        f"{cliniko_sandbox.api_key}:".encode()).decode()}
    assert requests.patch(url, data="notes=x", headers=headers, timeout=5).status_code == 415
    refused = requests.patch(url, json={"notes": "x", "rapport": 1}, headers=headers, timeout=5)
    assert (refused.status_code, list(refused.json()["errors"])) == (422, ["rapport"])
    saved = requests.put(url, json={"notes": "x"}, headers=headers, timeout=5)
    assert (saved.status_code, saved.json()["notes"]) == (200, "x")
