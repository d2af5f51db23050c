"""The check-in email: multipart, unsubscribe headers, no health detail, a safe link."""

from __future__ import annotations

import re
import socket

from sqlalchemy import select

from plugin.store import database as storage
from plugin.store import sealing as crypto
from plugin.store.models import SurveyLink
from tests.support.survey import LINK, html_of, text_of


def test_email_is_multipart_with_one_click_unsubscribe(deliver_generic, drain, mailbox):
    deliver_generic("appointment.completed")
    drain()
    (message,) = mailbox.messages
    assert message.is_multipart()
    assert {part.get_content_type() for part in message.iter_parts()} == {
        "text/plain", "text/html"}
    assert message["From"] == "Harbour Massage <checkin@harbour.example>"
    assert message["Subject"] == "One minute about your visit to Harbour Massage"
    assert re.fullmatch(r"<http://rapport\.test/s/[A-Za-z0-9_-]+/unsubscribe>",
                        message["List-Unsubscribe"].strip())
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Hi Sam," in text_of(message)
    assert "Dana" in text_of(message)


def test_email_names_no_treatment_and_no_health_detail(deliver_generic, drain, mailbox):
    deliver_generic("appointment.completed")
    drain()
    (message,) = mailbox.messages
    everything = message.as_string() + text_of(message) + html_of(message)
    # Random tokens and ids may contain anything; the words around them may not.
    words = re.sub(r"https?://\S+|Message-ID: .*|Date: .*", "", everything)
    for detail in ("Deep tissue", "deep tissue", "A-100", "C-7", "massage 60"):
        assert detail not in words


def test_link_carries_only_a_random_token_stored_as_a_hash(app, deliver_generic, drain, mailbox):
    deliver_generic("appointment.completed")
    drain()
    token = LINK.search(text_of(mailbox.messages[0])).group(1)
    assert len(token) >= 22  # at least 128 bits of base64url
    assert "sam" not in token.lower()
    with app.app_context(), storage.session() as db:
        stored = db.scalars(select(SurveyLink.token_hash)).all()
    assert stored == [crypto.token_digest(token)]
    assert token not in stored[0]
    with open(app.config["DATABASE_URL"].removeprefix("sqlite:///"), "rb") as database:
        assert token.encode() not in database.read()


def test_the_message_ends_without_waiting_for_the_servers_acknowledgement(app, mailbox):
    """The line that ends a message is a small write right after the body. With Nagle's
    algorithm on, it waits for the body's acknowledgement, which the server delays
    (~40 ms on Linux): most of a send's time. The connection turns it off."""
    from email.message import EmailMessage

    from plugin.pipeline import mail

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = (
        "checkin@harbour.example", "sam@example.com", "One minute")
    message.set_content("Hello\n" * 200)
    with app.app_context():
        mail.send(message)
        mail.send(message)
        smtp = mail._kept.connection[0]
        assert smtp.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert [m["To"] for m in mailbox.messages] == ["sam@example.com"] * 2
