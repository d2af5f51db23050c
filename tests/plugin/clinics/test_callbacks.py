"""Callback URLs (finding: SSRF through the callback URL): only public addresses, https
in production, checked when set and on the very address each delivery connects to;
what is kept of a refusal is its status and reason phrase; the answer's body is read
only so far; the URL and the signing secret can be changed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from plugin import create_app
from plugin.cli import main
from plugin.clinics import callbacks, health
from plugin.config import ConfigurationError
from plugin.store import database
from plugin.store.models import Clinic, WriteBack
from tests.support.callbacks import RawAnswers, answered_with_callback

PRODUCTION = {"ENV": "production", "ALLOW_PRIVATE_CALLBACKS": None}


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook", "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.8/hook", "https://172.16.3.4/", "https://192.168.1.1/",
    "https://100.64.0.1/", "https://0.0.0.0/", "https://224.0.0.1/", "https://[::1]/hook",
    "https://[fe80::1]/", "https://[fc00::1]/", "https://[::ffff:127.0.0.1]/",
    "https://[2002:7f00:1::]/", "https://[64:ff9b::a9fe:a9fe]/", "https://localhost/hook",
    "http://93.184.216.34/hook", "ftp://93.184.216.34/", "https:///nohost"])
def test_production_refuses_callbacks_into_private_networks_and_plain_http(app_factory, url):
    app = app_factory(**PRODUCTION)
    with app.app_context():
        assert callbacks.url_refusal(url) is not None


def test_a_public_https_address_is_accepted(app_factory):
    app = app_factory(**PRODUCTION)
    with app.app_context():
        assert callbacks.url_refusal("https://93.184.216.34/hook") is None
        assert callbacks.url_refusal("https://[2606:4700::1111]:8443/hook") is None


def test_the_escape_hatch_is_for_development_only(tmp_path, redis_url):
    settings = {"ENV": "production", "SECRET_KEY": "k" * 32, "BASE_URL": "https://r.example",
                "INSTANCE_PATH": str(tmp_path), "REDIS_URL": redis_url,
                "ALLOW_PRIVATE_CALLBACKS": True}
    with pytest.raises(ConfigurationError, match="ALLOW_PRIVATE_CALLBACKS"):
        create_app(settings)
    development = create_app({**settings, "ENV": "development",
                              "ALLOW_PRIVATE_CALLBACKS": None})
    assert development.config["ALLOW_PRIVATE_CALLBACKS"] is True


def test_a_delivery_to_an_address_that_became_private_is_refused_unsent(
        app_factory, mailbox, callback_receiver):
    """The URL was checked when set; its name now resolves to this machine (here
    ``localhost``): the delivery checks the address it would connect to, and refuses."""
    port = callback_receiver.url.split(":")[2].split("/")[0]
    app, _clinic = answered_with_callback(app_factory, mailbox,
                                          f"https://localhost:{port}/hooks/rapport",
                                          **PRODUCTION)
    assert callback_receiver.received == []
    with app.app_context(), database.session() as db:
        row = db.scalar(select(WriteBack))
        assert row.status == "failed"
        assert "Rapport does not post to localhost (127.0.0.1" in row.last_error


def test_a_refusal_keeps_the_status_and_reason_never_the_body(app_factory, mailbox):
    secret = b"db_password=hunter2 internal admin page"
    raw = RawAnswers(b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n" % len(secret),
                     secret)
    try:
        app, clinic = answered_with_callback(app_factory, mailbox, raw.url)
    finally:
        raw.close()
    with app.app_context(), database.session() as db:
        error = db.scalar(select(WriteBack)).last_error
        summary = health.clinic_summary(db, db.scalar(select(Clinic)))
    assert error == f"{raw.url} answered 404 Not Found"
    assert "hunter2" not in json.dumps(summary, default=str)


def test_the_answer_is_read_only_so_far(app_factory, mailbox):
    """An endless answer does not hold the worker nor fill its memory."""
    size = 64 * 1024 * 1024
    raw = RawAnswers(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size,
                     b"x" * size, chunk=1024 * 1024)
    try:
        app, _clinic = answered_with_callback(app_factory, mailbox, raw.url)
    finally:
        raw.close()
    with app.app_context(), database.session() as db:
        assert db.scalar(select(WriteBack)).status == "delivered"
    assert raw.sent < size // 2


@pytest.fixture
def rapport(monkeypatch, tmp_path, redis_conn, redis_url):
    monkeypatch.setenv("RAPPORT_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("RAPPORT_REDIS_URL", redis_url)
    monkeypatch.setenv("RAPPORT_SECRET_KEY", "cli-test-secret-key-0123456789")
    monkeypatch.setenv("RAPPORT_BASE_URL", "https://rapport.example")
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args), catch_exceptions=False)


def test_clinic_add_refuses_a_private_callback_in_production(rapport):
    result = rapport("clinic", "add", "--name", "Harbour", "--platform", "generic",
                     "--callback-url", "https://169.254.169.254/latest/meta-data/")
    assert result.exit_code == 1
    assert "Rapport does not post to 169.254.169.254" in result.output


def test_the_callback_url_is_changed_with_the_same_rules(rapport):
    created = json.loads(rapport("clinic", "add", "--name", "Harbour", "--platform",
                                 "generic", "--callback-url", "https://93.184.216.34/a",
                                 "--json").output)
    refused = rapport("clinic", "configure", created["key"], "--callback-url",
                      "http://93.184.216.34/b")
    assert refused.exit_code == 1 and "must be an https URL" in refused.output
    changed = rapport("clinic", "configure", created["key"], "--callback-url",
                      "https://93.184.216.34/b")
    assert changed.exit_code == 0, changed.output
    listed = json.loads(rapport("clinic", "list", "--json").output)
    assert listed[0]["key"] == created["key"]


def test_the_callback_secret_is_rotated_signing_with_both_until_retired(
        app_factory, mailbox, callback_receiver):
    app, clinic = answered_with_callback(app_factory, mailbox, callback_receiver.url)
    with app.app_context():
        changed = callbacks.rotate_secret(clinic["key"])
    assert changed.new_secret.startswith("whsec_")
    assert changed.new_secret != clinic["callback_secret"]
    from plugin.pipeline import write_back
    from plugin.tasks import worker

    def deliver_again(nudge: str):
        with app.app_context():
            with database.session() as db:
                row = db.scalar(select(WriteBack))
                row.status = "pending"
                row_id = row.id
            write_back.queue_write_back(row_id, nudge=nudge)
            worker.drain(forking=False)
        sent = callback_receiver.received[-1]
        return sent, {name.lower(): value for name, value in sent.headers.items()}

    sent, headers = deliver_again("rotated")
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (clinic["callback_secret"], changed.new_secret):
        Webhook(secret).verify(sent.body.decode(), headers)
    with app.app_context():
        assert callbacks.rotate_secret(clinic["key"], retire_old=True).new_secret is None
    sent, headers = deliver_again("retired")
    assert len(headers["webhook-signature"].split(" ")) == 1
    Webhook(changed.new_secret).verify(sent.body.decode(), headers)


def test_rotate_secret_callback_from_the_command_line(rapport):
    created = json.loads(rapport("clinic", "add", "--name", "Harbour", "--platform",
                                 "generic", "--callback-url", "https://93.184.216.34/a",
                                 "--json").output)
    result = rapport("clinic", "rotate-secret", created["key"], "--callback")
    assert result.exit_code == 0, result.output
    assert "New callback signing secret: whsec_" in result.output
    assert created["callback_secret"] not in result.output
    retired = rapport("clinic", "rotate-secret", created["key"], "--callback", "--retire-old")
    assert "newest secret only" in retired.output
