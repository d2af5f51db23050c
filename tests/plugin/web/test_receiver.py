"""POST /webhooks/generic/<clinic_key>: every answer the endpoint can give."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from handlers import generic
from plugin.store import database as storage
from plugin.store.models import InboxEvent
from plugin.tasks.queue import qualified
from plugin.web import inbox
from tests.support.generic import event_body, sign_generic, webhook_path


def inbox_count(app) -> int:
    with app.app_context(), storage.session() as db:
        return db.scalar(select(func.count(InboxEvent.id)))


def queued(app, redis_conn) -> int:
    assert inbox.inbox(app).flush()
    return redis_conn.llen("rq:queue:rapport")


def test_verified_event_is_stored_raw_queued_and_accepted(app, web, generic_clinic, redis_conn):
    body = event_body()
    response = web.post(webhook_path(generic_clinic), data=body,
                        headers=sign_generic(body, generic_clinic, msg_id="msg_1"))
    assert response.status_code == 202
    assert response.json["status"] == "accepted"
    with app.app_context(), storage.session() as db:
        row = db.scalars(select(InboxEvent)).one()
        assert row.body == body
        assert row.delivery_id == "msg_1"
        assert row.processed_at is None
    assert queued(app, redis_conn) == 1
    with app.app_context():
        job_id = qualified(f"ingest_events-{response.json['id']}")
    assert redis_conn.exists(f"rq:job:{job_id}")


def test_unknown_clinic_is_404(app, web, generic_clinic):
    body = event_body()
    response = web.post("/webhooks/generic/no-such-clinic", data=body,
                        headers=sign_generic(body, generic_clinic))
    assert response.status_code == 404
    assert inbox_count(app) == 0


def test_unknown_platform_is_404(web, generic_clinic):
    body = event_body()
    response = web.post(f"/webhooks/nope/{generic_clinic['key']}", data=body,
                        headers=sign_generic(body, generic_clinic))
    assert response.status_code == 404


def test_addresses_that_are_no_webhook_endpoint_are_404(web, generic_clinic):
    body = event_body()
    for path in ("/webhooks/generic", f"/webhooks/generic/{generic_clinic['key']}/more",
                 "/webhooks/", f"/webhooks//{generic_clinic['key']}"):
        response = web.post(path, data=body, headers=sign_generic(body, generic_clinic))
        assert response.status_code == 404, path
        assert response.get_json() == {"error": "no webhook endpoint at this address"}


def test_other_methods_are_405_naming_post(app, web, generic_clinic):
    response = web.get(webhook_path(generic_clinic))
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.get_json() == {"error": "webhooks are delivered with POST"}
    assert inbox_count(app) == 0


def test_answers_are_json_that_browsers_will_not_sniff(web, generic_clinic):
    body = event_body()
    response = web.post(webhook_path(generic_clinic), data=body, headers=sign_generic(body,
                                                                                      generic_clinic))
    assert response.status_code == 202
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_json()["status"] == "accepted"


def test_wrong_secret_is_401_and_nothing_stored(app, web, generic_clinic, redis_conn):
    body = event_body()
    headers = generic.sign(body, secret=generic.new_secret(), msg_id="msg_x")
    response = web.post(webhook_path(generic_clinic), data=body, headers=headers)
    assert response.status_code == 401
    assert inbox_count(app) == 0
    assert queued(app, redis_conn) == 0


def test_tampered_body_is_401(app, web, generic_clinic):
    body = event_body()
    headers = sign_generic(body, generic_clinic)
    response = web.post(webhook_path(generic_clinic), data=body.replace(b"Sam", b"Eve"),
                        headers=headers)
    assert response.status_code == 401
    assert inbox_count(app) == 0


def test_missing_signature_headers_are_401(app, web, generic_clinic):
    body = event_body()
    for dropped in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        headers = {k: v for k, v in sign_generic(body, generic_clinic).items() if k != dropped}
        assert web.post(webhook_path(generic_clinic), data=body, headers=headers).status_code == 401
    assert inbox_count(app) == 0


def test_malformed_signature_header_is_401_not_500(app, web, generic_clinic):
    body = event_body()
    headers = {**sign_generic(body, generic_clinic), "webhook-signature": "garbage-without-comma"}
    assert web.post(webhook_path(generic_clinic), data=body, headers=headers).status_code == 401


def test_stale_or_future_timestamp_is_401(app, web, generic_clinic):
    body = event_body()
    for offset, reason in ((timedelta(minutes=-6), "Message timestamp too old"),
                           (timedelta(minutes=6), "Message timestamp too new")):
        headers = sign_generic(body, generic_clinic, timestamp=datetime.now(timezone.utc) + offset)
        response = web.post(webhook_path(generic_clinic), data=body, headers=headers)
        assert response.status_code == 401
        # The sender learns what to fix (its clock), and nothing about the secret.
        assert response.get_json() == {"error": "the signature does not verify",
                                       "reason": reason}
    assert inbox_count(app) == 0


def test_timestamp_within_five_minutes_is_accepted(web, generic_clinic):
    body = event_body()
    headers = sign_generic(body, generic_clinic,
                           timestamp=datetime.now(timezone.utc) - timedelta(minutes=4))
    assert web.post(webhook_path(generic_clinic), data=body, headers=headers).status_code == 202


def test_any_of_several_secrets_verifies_during_rotation(app, web, generic_clinic):
    from plugin.clinics import records as clinics

    new_secret = generic.new_secret()
    with app.app_context(), storage.session() as db:
        row = clinics.by_key(db, generic_clinic["key"])
        values = clinics.credentials(row)
        values["inbound_secrets"].append(new_secret)
        clinics.store_credentials(row, values)
    for secret in (generic_clinic["webhook_secret"], new_secret):
        body = event_body()
        headers = generic.sign(body, secret=secret, msg_id=f"msg_{secret[-6:]}")
        assert web.post(webhook_path(generic_clinic), data=body, headers=headers).status_code == 202
    assert inbox_count(app) == 2


def test_body_over_256_kb_is_413(app, web, generic_clinic):
    body = json.dumps({"type": "appointment.completed", "pad": "x" * 262_144}).encode()
    response = web.post(webhook_path(generic_clinic), data=body, headers=sign_generic(body,
                                                                                      generic_clinic))
    assert response.status_code == 413
    assert inbox_count(app) == 0


def test_body_of_exactly_256_kb_is_read(app, web, generic_clinic):
    prefix, suffix = b'{"type": "appointment.completed", "pad": "', b'"}'
    body = prefix + b"x" * (262_144 - len(prefix) - len(suffix)) + suffix
    response = web.post(webhook_path(generic_clinic), data=body, headers=sign_generic(body,
                                                                                      generic_clinic))
    assert response.status_code == 400  # read whole and verified; then the schema speaks
    assert response.get_json()["field"] == "timestamp"


def test_malformed_json_is_400_naming_the_body(app, web, generic_clinic):
    body = b'{"type": "appointment.completed", '
    response = web.post(webhook_path(generic_clinic), data=body, headers=sign_generic(body,
                                                                                      generic_clinic))
    assert response.status_code == 400
    assert response.json["field"] == "body"
    assert "JSON" in response.json["error"]
    assert inbox_count(app) == 0


def test_schema_break_is_400_naming_the_field(app, web, generic_clinic):
    document = json.loads(event_body())
    document["data"]["appointment"]["end"] = "yesterday-ish"
    body = json.dumps(document).encode()
    response = web.post(webhook_path(generic_clinic), data=body, headers=sign_generic(body,
                                                                                      generic_clinic))
    assert response.status_code == 400
    assert response.json["field"] == "data.appointment.end"
    assert inbox_count(app) == 0


def test_missing_client_is_400_naming_it(web, generic_clinic):
    document = json.loads(event_body())
    del document["data"]["client"]
    body = json.dumps(document).encode()
    response = web.post(webhook_path(generic_clinic), data=body, headers=sign_generic(body,
                                                                                      generic_clinic))
    assert response.status_code == 400
    assert response.json["field"] == "data.client"


def test_invalid_email_is_400_naming_it(web, generic_clinic):
    body = event_body(email="not-an-address")
    response = web.post(webhook_path(generic_clinic), data=body, headers=sign_generic(body,
                                                                                      generic_clinic))
    assert response.status_code == 400
    assert response.json["field"] == "data.client.email"


def test_unknown_event_type_is_2xx_logged_and_not_stored(app, web, generic_clinic, caplog):
    body = json.dumps({"type": "invoice.paid", "timestamp": "2026-11-25T15:00:00Z",
                       "data": {}}).encode()
    with caplog.at_level(logging.INFO):
        response = web.post(webhook_path(generic_clinic), data=body, headers=sign_generic(body,
                                                                                          generic_clinic))
    assert response.status_code == 200
    assert response.json == {"status": "ignored", "type": "invoice.paid"}
    assert "webhooks.ignored-event: invoice.paid" in caplog.text
    assert inbox_count(app) == 0


def test_duplicate_delivery_is_acknowledged_and_ignored(app, web, generic_clinic, redis_conn):
    body = event_body()
    headers = sign_generic(body, generic_clinic, "msg_d")
    first = web.post(webhook_path(generic_clinic), data=body, headers=headers)
    again = web.post(webhook_path(generic_clinic), data=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json["status"] == "duplicate"
    assert inbox_count(app) == 1
    assert queued(app, redis_conn) == 1


def test_long_delivery_ids_differing_only_at_the_end_are_two_events(app, web, generic_clinic):
    stem = "msg_" + "x" * 300
    answers = []
    for msg_id in (stem + "1", stem + "2", stem + "1"):
        body = event_body()
        answers.append(web.post(webhook_path(generic_clinic), data=body,
                                headers=sign_generic(body, generic_clinic, msg_id)).status_code)
    assert answers == [202, 202, 200]
    assert inbox_count(app) == 2


def test_same_delivery_id_at_two_clinics_is_two_events(app, web, generic_clinic_factory):
    first, second = generic_clinic_factory(), generic_clinic_factory()
    for target in (first, second):
        body = event_body()
        response = web.post(webhook_path(target), data=body,
                            headers=sign_generic(body, target, "msg_same"))
        assert response.status_code == 202
    assert inbox_count(app) == 2


def test_event_is_kept_when_redis_is_down(app, web, generic_clinic):
    """Acknowledged means stored: with the queue unreachable the event still lands in
    the inbox, and the sweeper queues it later."""
    app.extensions["rapport.redis"] = type(app.extensions["rapport.redis"]).from_url(
        "redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    body = event_body()
    response = web.post(webhook_path(generic_clinic), data=body, headers=sign_generic(body,
                                                                                      generic_clinic))
    assert response.status_code == 202
    assert inbox_count(app) == 1
