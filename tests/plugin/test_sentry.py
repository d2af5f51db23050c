"""Errors reach Sentry with no personal data in them (plugin/sentry.py): a real
sentry-sdk client, its Flask and RQ integrations, and a transport that keeps what the
client would send."""

from __future__ import annotations

import json
import logging

import pytest
import sentry_sdk
from rq import Queue
from sentry_sdk.transport import Transport

from plugin import sentry

TOKEN = "Zq3kT0-survey-link-token-abcdefgh"


class Recorded(Transport):
    def __init__(self):
        super().__init__()
        self.events: list[dict] = []

    def capture_envelope(self, envelope):
        for item in envelope.items:
            payload = item.payload.json
            if payload is not None and item.type in ("event", "transaction"):
                self.events.append(payload)


@pytest.fixture
def recorded(app_factory):
    transport = Recorded()
    app = app_factory(SENTRY_DSN="https://key@sentry.example/1", SENTRY_TRANSPORT=transport)
    yield app, transport
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # no DSN: nothing more is reported from this process


def failing_view():
    logging.getLogger("plugin.web.survey").warning(
        "survey: could not find /s/%s for sam@example.com", TOKEN)
    raise RuntimeError(f"cannot email sam@example.com about /s/{TOKEN} for Sam Jones")


def test_a_failed_request_is_reported_without_personal_data(recorded):
    app, transport = recorded
    app.add_url_rule(f"/s/{TOKEN}/boom", "boom", failing_view)
    client = app.test_client()
    client.set_cookie("session", "secret-session-cookie")
    response = client.get(f"/s/{TOKEN}/boom?email=sam@example.com",
                           data={"first_name": "Sam", "comment": "my shoulder hurts"},
                           headers={"Authorization": "Bearer abc", "X-Forwarded-For": "1.2.3.4"})
    assert response.status_code == 500
    sentry_sdk.flush()
    (event,) = transport.events
    sent = json.dumps(event)
    assert event["exception"]["values"][0]["type"] == "RuntimeError"
    assert "/s/[Filtered]" in sent and "[Filtered]" in event["exception"]["values"][0]["value"]
    for personal in ("sam@example.com", TOKEN, "my shoulder hurts", "secret-session-cookie",
                     "Bearer abc", "1.2.3.4"):
        assert personal not in sent, personal
    assert "data" not in event["request"] and "cookies" not in event["request"]
    assert "user" not in event
    # No frame carries its local variables (a job's hold addresses and names).
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames and not any("vars" in frame for frame in frames)
    crumbs = event["breadcrumbs"]["values"]
    assert any("survey: could not find /s/[Filtered] for [Filtered]" in (c.get("message") or "")
               for c in crumbs)


def test_a_failed_job_is_reported_without_its_personal_data(recorded, redis_conn, drain):
    app, transport = recorded
    queue = Queue("rapport", connection=redis_conn)
    queue.enqueue("plugin.pipeline.sending.send_test", 1, "kim@example.com")
    drain()
    sentry_sdk.flush()
    (event,) = [e for e in transport.events if e.get("exception")]
    sent = json.dumps(event)
    assert "kim@example.com" not in sent
    assert event["extra"]["rq-job"]["func"] == "plugin.pipeline.sending.send_test"
    assert "[Filtered]" in json.dumps(event["extra"]["rq-job"])


def test_scrub_keeps_what_is_not_personal():
    event = {"message": "write-back.retry: 12 in 30 s", "extra": {"clinic": "harbour",
             "email": "a@b.example", "credentials": {"api_key": "x"}}, "tags": {"job": "x"}}
    assert sentry.scrub_event(event) == {
        "message": "write-back.retry: 12 in 30 s",
        "extra": {"clinic": "harbour", "email": "[Filtered]", "credentials": "[Filtered]"},
        "tags": {"job": "x"}}


def test_no_dsn_no_sentry(app):
    assert sentry.init(app.config) is False
