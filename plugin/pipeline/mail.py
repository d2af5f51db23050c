"""The check-in emails: composed from templates, sent over SMTP.

An email names the clinic and, where known, the therapist, and nothing about the
treatment or the client's health. Its only link carries a random token, no personal
data. ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` (RFC 8058) let mail clients
offer one-click unsubscribing.
"""

from __future__ import annotations

import smtplib
import socket
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from zoneinfo import ZoneInfo

from babel.dates import format_date
from flask import current_app

from plugin.i18n import render_localized, translator


class MailError(RuntimeError):
    """The message was not accepted; ``temporary`` says whether trying again may help.
    ``uncertain``: the server had the whole message and then failed to answer, so it may
    have delivered it; sending it again could email the client twice."""

    def __init__(self, message: str, temporary: bool, uncertain: bool = False,
                 stale: bool = False):
        super().__init__(message)
        self.temporary = temporary
        self.uncertain = uncertain
        # A kept connection that had closed before the message went: a new one may send it.
        self.stale = stale


class HandoverRefused(RuntimeError):
    """Raised by an ``on_handover`` that finds the message no longer its sender's to
    send: the connection is closed before the line that ends it, so no one gets it."""


class _Connection(smtplib.SMTP):
    """An SMTP connection that knows whether the message itself was handed over: the
    server agreed to take it (354 to DATA) and it was sent whole, with the line "."
    that ends it. A server that fails before that cannot have it (RFC 5321 §4.1.1.4: a
    message is the server's only once the ending "." came), so trying again emails no
    one twice.

    ``on_handover`` is called once the message has been sent but for that last line:
    the caller records that, from then on, the server may have it (a check-in's
    ``smtp_stage``), and then the line goes. If the process dies before that call, the
    server provably never had the message; if recording fails (or refuses), the
    connection is closed without that line, and the server never has the message."""

    handed_over = False
    _in_data = False
    _body_next = False
    on_handover: Callable[[], None] | None = None

    def _get_socket(self, host, port, timeout):
        # Without TCP_NODELAY the last line, a small write right after the body, waits
        # for the body's acknowledgement, which the server delays (~40 ms on Linux):
        # most of a send's time on a fast network.
        sock = super()._get_socket(host, port, timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def data(self, msg):
        self._in_data = True
        try:
            return super().data(msg)
        finally:
            self._in_data = False

    def getreply(self):
        reply = super().getreply()
        if self._in_data and reply[0] == 354:
            self._body_next = True
        return reply

    def send(self, s):
        if not self._body_next or self.handed_over:
            return super().send(s)
        ending = b"\r\n.\r\n"
        body, last_line = (s[:-3], s[-3:]) if s.endswith(ending) else (s, b"")
        super().send(body)
        if self.on_handover is not None:
            try:
                self.on_handover()
            except BaseException:
                self.close()
                raise
        self.handed_over = True
        if last_line:
            super().send(last_line)
        return None


@dataclass(frozen=True)
class CheckInEmail:
    """What a check-in or reminder email says."""

    to: str
    first_name: str | None
    clinic_name: str
    therapist_name: str | None
    survey_url: str
    unsubscribe_url: str
    expires_at: datetime
    timezone: str
    language: str
    reminder: bool = False
    test: bool = False
    """An admin's test: marked as one, and not thanking anyone for a visit."""
    # The clinic's own sender name and reply-to (its settings); the address itself stays
    # the installation's MAIL_FROM, which its mail server is allowed to send for.
    sender_name: str | None = None
    reply_to: str | None = None


def compose(check_in: CheckInEmail) -> EmailMessage:
    _ = translator(check_in.language)
    expires = format_date(check_in.expires_at.astimezone(ZoneInfo(check_in.timezone)),
                          format="long", locale=check_in.language)
    # A clinic name that came with a line break (set before names were checked) must
    # not break the headers: it reads as one line.
    check_in = replace(check_in, clinic_name=one_line(check_in.clinic_name),
                       therapist_name=one_line(check_in.therapist_name),
                       first_name=one_line(check_in.first_name))
    if check_in.test:
        marker = _("Test")
        subject = f"[{marker}] " + _("The check-in your clients receive from %(clinic)s",
                                     clinic=check_in.clinic_name)
    elif check_in.reminder:
        subject = _("Reminder: one minute about your visit to %(clinic)s",
                    clinic=check_in.clinic_name)
    else:
        subject = _("One minute about your visit to %(clinic)s", clinic=check_in.clinic_name)
    context = {"c": check_in, "expires": expires, "subject": subject}

    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender(check_in.sender_name)
    if check_in.reply_to:
        message["Reply-To"] = check_in.reply_to
    message["To"] = check_in.to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=_sender_domain())
    message["List-Unsubscribe"] = f"<{check_in.unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(render_localized("email/check_in.txt", check_in.language, **context))
    message.add_alternative(
        render_localized("email/check_in.html", check_in.language, **context), subtype="html"
    )
    return message


def one_line(text: str | None) -> str | None:
    """``text`` with every line break and other control character turned into a space."""
    if text is None:
        return None
    return " ".join("".join(" " if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char
                            for char in text).split())


def sender(display_name: str | None) -> str | Address:
    """``MAIL_FROM``, under the clinic's display name when it has one."""
    configured = current_app.config["MAIL_FROM"]
    if not display_name:
        return configured
    address = parseaddr(configured)[1]
    try:
        return Address(display_name=display_name, addr_spec=address)
    except (ValueError, IndexError):
        return configured


def _sender_domain() -> str:
    address = parseaddr(current_app.config["MAIL_FROM"])[1]
    try:
        return Address(addr_spec=address).domain or "localhost"
    except (ValueError, IndexError):
        return "localhost"


KEEP_OPEN_SECONDS = 30
"""How long a connection to the mail server is kept for the next message. A worker
sending a backlog hands each message over on the connection the last one used, rather
than connecting (and saying EHLO, STARTTLS, AUTH) for every one."""

_kept = threading.local()


def send(message: EmailMessage, *, on_handover: Callable[[], None] | None = None) -> None:
    """Hand ``message`` to the configured SMTP server, or raise :class:`MailError`.
    ``on_handover``: see :class:`_Connection`.

    On the connection the previous message used, if it is recent; should that one turn
    out closed (the server hung up while it was idle) before the message was handed
    over, on a new one. Once the server may have the message, it is never sent again.
    """
    config = current_app.config
    server = (config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_TIMEOUT"],
              config["SMTP_STARTTLS"], config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
    smtp = _take_kept(server)
    if smtp is not None:
        try:
            _hand_over(smtp, message, server, on_handover)
            return
        except MailError as error:
            if not error.stale:
                raise
    _hand_over(None, message, server, on_handover)


def _take_kept(server: tuple) -> _Connection | None:
    kept = getattr(_kept, "connection", None)
    _kept.connection = None
    if kept is None:
        return None
    smtp, for_server, last_used = kept
    if for_server == server and time.monotonic() - last_used < KEEP_OPEN_SECONDS:
        return smtp
    _goodbye(smtp)
    return None


def _goodbye(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _hand_over(smtp: _Connection | None, message: EmailMessage, server: tuple,
               on_handover: Callable[[], None] | None) -> None:
    """Send ``message`` on ``smtp`` (a kept connection) or on a new one, and keep the
    connection for the next message; any failure closes it."""
    host, port, timeout, starttls, username, password = server
    reused = smtp is not None
    try:
        if smtp is None:
            smtp = _Connection(host, port, timeout=timeout)
            if starttls:
                smtp.starttls()
            if username:
                smtp.login(username, password or "")
        smtp.handed_over = smtp._body_next = False
        smtp.on_handover = on_handover
        smtp.send_message(message)
        smtp.on_handover = None
    except smtplib.SMTPRecipientsRefused as error:
        _goodbye(smtp)
        codes = [code for code, _ in error.recipients.values()]
        raise MailError(f"the mail server refused the recipient ({codes})",
                        temporary=all(400 <= code < 500 for code in codes))
    except smtplib.SMTPResponseException as error:
        _goodbye(smtp)
        raise MailError(f"the mail server answered {error.smtp_code}: "
                        f"{error.smtp_error.decode(errors='replace')}",
                        temporary=400 <= error.smtp_code < 500,
                        stale=reused and error.smtp_code == 421 and not smtp.handed_over)
    except (smtplib.SMTPException, OSError) as error:
        if smtp is not None:
            smtp.close()
        if smtp is not None and smtp.handed_over:
            # No answer to the message itself (a timeout, a dropped connection): the
            # server may have queued it all the same.
            raise MailError(
                f"the mail server {host}:{port} stopped answering once it had the message "
                f"({error.__class__.__name__}: {error}); it may have been delivered, so it "
                "is not sent again", temporary=False, uncertain=True)
        raise MailError(f"cannot reach the mail server {host}:{port} "
                        f"({error.__class__.__name__}: {error})", temporary=True, stale=reused)
    _kept.connection = (smtp, server, time.monotonic())
