"""The check-in emails: composed from templates, sent over SMTP.

An email names the clinic and, where known, the therapist, and nothing about the
treatment or the client's health. Its only link carries a random token, no personal
data. ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` (RFC 8058) let mail clients
offer one-click unsubscribing.
"""

from __future__ import annotations

import smtplib
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

    def __init__(self, message: str, temporary: bool, uncertain: bool = False):
        super().__init__(message)
        self.temporary = temporary
        self.uncertain = uncertain


class _Connection(smtplib.SMTP):
    """An SMTP connection that knows whether the message itself was handed over: the
    server agreed to take it (354 to DATA) and it was sent whole. A server that fails
    before that cannot have it, so trying again emails no one twice.

    ``on_handover`` is called once the server has agreed to take the message and before
    a byte of it is sent: the caller records that, from then on, the server may have it
    (a check-in's ``smtp_stage``). If the process dies before that call, the server
    provably never had the message; if recording fails, the message is not sent."""

    handed_over = False
    _in_data = False
    _body_next = False
    on_handover: Callable[[], None] | None = None

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
        if self._body_next and not self.handed_over and self.on_handover is not None:
            self.on_handover()
        super().send(s)
        if self._body_next:
            self.handed_over = True


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


def send(message: EmailMessage, *, on_handover: Callable[[], None] | None = None) -> None:
    """Hand ``message`` to the configured SMTP server, or raise :class:`MailError`.
    ``on_handover``: see :class:`_Connection`."""
    config = current_app.config
    smtp = None
    try:
        smtp = _Connection(config["SMTP_HOST"], config["SMTP_PORT"],
                           timeout=config["SMTP_TIMEOUT"])
        smtp.on_handover = on_handover
        if config["SMTP_STARTTLS"]:
            smtp.starttls()
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        raise MailError(f"the mail server refused the recipient ({codes})",
                        temporary=all(400 <= code < 500 for code in codes))
    except smtplib.SMTPResponseException as error:
        raise MailError(f"the mail server answered {error.smtp_code}: "
                        f"{error.smtp_error.decode(errors='replace')}",
                        temporary=400 <= error.smtp_code < 500)
    except (smtplib.SMTPException, OSError) as error:
        if smtp is not None and smtp.handed_over:
            # No answer to the message itself (a timeout, a dropped connection): the
            # server may have queued it all the same.
            raise MailError(
                f"the mail server {config['SMTP_HOST']}:{config['SMTP_PORT']} stopped "
                f"answering once it had the message ({error.__class__.__name__}: {error}); "
                "it may have been delivered, so it is not sent again",
                temporary=False, uncertain=True)
        raise MailError(
            f"cannot reach the mail server {config['SMTP_HOST']}:{config['SMTP_PORT']} "
            f"({error.__class__.__name__}: {error})", temporary=True)
    finally:
        # Once the message is accepted, a failed goodbye must not make it look unsent.
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
