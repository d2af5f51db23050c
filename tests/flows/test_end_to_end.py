"""Rapport as it runs in production: gunicorn serving wsgi:app, a separate worker
process, real Redis and SMTP, a webhook signed by the official standardwebhooks
library, the survey filled in by a headless browser, the callback verified. The processes
start once for the module; each test has a clinic of its own."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import datetime, timezone

import pytest
import redis
import requests
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from plugin import create_app
from plugin.store import database as storage
from plugin.store.models import InboxEvent
from plugin.tasks import queue
from tests.support import databases
from tests.support.browser import CHROMIUM_ARGS, require_chromium
from tests.support.generic import add_generic_clinic, event_body
from tests.support.rapport import make_config, subprocess_env
from tests.support.servers import free_port
from tests.support.survey import LINK, text_of
from tests.support.waiting import wait_until

# The processes start once, on one test process: split across two, each would start its
# own (10 s on a busy two-core machine).
pytestmark = pytest.mark.xdist_group("end-to-end")


@pytest.fixture(scope="module")
def production(tmp_path_factory, redis_url, smtp_server, sqlite_template):
    """gunicorn + `rapport worker`, as separate processes, started once for this module's
    tests (each test gets a clinic of its own: see ``stack``)."""
    folder = tmp_path_factory.mktemp("production")
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    app = create_app(make_config(folder, redis_url, smtp_server.port, BASE_URL=base_url,
                                 DATABASE_URL=databases.sqlite_copy(
                                     sqlite_template, folder / "rapport.db")))
    env = subprocess_env(app)
    web_log = folder / "gunicorn.log"
    processes = [
        subprocess.Popen([sys.executable, "-m", "gunicorn", "wsgi:app", "--bind",
                          f"127.0.0.1:{port}", "--workers", "2"], env=env,
                         start_new_session=True, stderr=web_log.open("wb")),
        subprocess.Popen([sys.executable, "-m", "plugin", "worker"], env=env,
                         start_new_session=True, stderr=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL),
    ]

    def healthy():
        try:
            return requests.get(f"{base_url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, what="gunicorn to answer")
        yield {"url": base_url, "web_log": web_log, "app": app}
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        app.extensions["rapport.engine"].dispose()
        redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def stack(production, callback_receiver, mailbox):
    """The running Rapport, done with whatever an earlier test gave it, and a clinic of
    this test's own (its clients new to Rapport)."""
    wait_until(lambda: all_done(production["app"]), what="the worker to finish")
    mailbox.clear()
    callback_receiver.clear()
    clinic = add_generic_clinic(production["app"], callback_url=callback_receiver.url)
    return {**production, "clinic": clinic}


def all_done(app) -> bool:
    """Every stored event processed, and no job queued or running (the reminder, due in
    two days, waits in RQ's scheduled registry)."""
    with app.app_context():
        with storage.session() as db:
            if db.scalar(select(InboxEvent.id).where(InboxEvent.processed_at.is_(None))):
                return False
        jobs = queue.queue()
        return not (jobs.count or jobs.started_job_registry.count)


def post_signed(stack, secret: str, body: bytes, chunked: bool = False) -> requests.Response:
    """Signed with the official library, exactly as a Standard Webhooks sender does;
    ``chunked``: sent in pieces with no Content-Length, as some middleware does."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(timezone.utc)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
               "content-type": "application/json"}
    data = (body[start:start + 100] for start in range(0, len(body), 100)) if chunked else body
    return requests.post(stack["clinic"]["webhook_url"], data=data, headers=headers, timeout=10)


def test_wrong_signature_gets_401_and_no_email(stack, mailbox):
    wrong = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    assert post_signed(stack, wrong, event_body()).status_code == 401
    assert post_signed(stack, stack["clinic"]["webhook_secret"],
                       event_body(appointment_id="A-2")).status_code == 202
    wait_until(lambda: mailbox.messages, what="the check-in email")
    # Every delivery stored is processed and the worker has nothing left: a second email,
    # had the refused delivery been kept, would have been sent by now.
    wait_until(lambda: all_done(stack["app"]), what="the worker to finish")
    assert len(mailbox.messages) == 1


def test_unknown_event_is_acknowledged_and_logged_by_gunicorn(stack):
    response = post_signed(stack, stack["clinic"]["webhook_secret"],
                           event_body("appointment.rescheduled", appointment_id="A-3"))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "type": "appointment.rescheduled"}
    wait_until(lambda: "webhooks.ignored-event: appointment.rescheduled"
               in stack["web_log"].read_text(), what="the log line")


def test_browser_fills_in_the_survey_and_the_callback_verifies(stack, mailbox, callback_receiver):
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    assert post_signed(stack, stack["clinic"]["webhook_secret"], event_body()).status_code == 202
    wait_until(lambda: mailbox.messages, what="the check-in email")
    assert len(mailbox.messages) == 1
    link = LINK.search(text_of(mailbox.messages[0])).group(0)
    assert link.startswith(stack["url"])

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        page.goto(link)
        groups = page.locator("fieldset.item")
        assert groups.count() >= 3
        for index in range(groups.count()):
            groups.nth(index).locator("label.point").nth(3).click()  # the fourth choice
        page.fill("textarea[name=comment]", "Café au lait après ? Très bien 👍")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Thank you")
        browser.close()

    call = wait_until(lambda: callback_receiver.received and callback_receiver.received[0],
                      what="the callback")
    event = Webhook(stack["clinic"]["callback_secret"]).verify(call.body, call.headers)
    assert event["type"] == "client.alliance_updated"
    assert event["data"]["client"] == {"id": "C-7"}
    assert event["data"]["comment"] == "Café au lait après ? Très bien 👍"
    assert "Très bien 👍" in event["data"]["note"]
    assert json.loads(call.body)["data"]["scores"]["scored"] is True


def test_a_body_sent_in_chunks_is_read_whole_and_held_to_the_size_limit(stack):
    """Without a Content-Length (chunked transfer encoding), as some middleware sends."""
    secret = stack["clinic"]["webhook_secret"]
    accepted = post_signed(stack, secret, event_body(appointment_id="A-chunked"), chunked=True)
    assert accepted.status_code == 202, accepted.text
    padded = json.dumps({"type": "appointment.completed", "pad": "x" * 262_144}).encode()
    assert post_signed(stack, secret, padded, chunked=True).status_code == 413
