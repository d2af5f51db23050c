"""Sending a check-in, through the loop: when (the delay, the window, a job woken early),
reminders and expiry, and what a mail server's failures lead to."""

from __future__ import annotations

import asyncio
import json
import socketserver
import threading
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from plugin.pipeline.sending import send_check_in
from plugin.store import database as storage
from plugin.store.models import CheckIn
from plugin.tasks.queue import qualified
from tests.support.generic import event_body, sign_generic, webhook_path
from tests.support.rows import invitations
from tests.support.servers import free_port
from tests.support.survey import survey_path


def test_send_waits_three_hours_after_the_visit_by_default(app, generic_clinic_factory, web, drain,
                                                            mailbox, redis_conn):
    target = generic_clinic_factory(timing={"send_delay_minutes": 180})
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
    body = event_body(end=end)
    web.post(webhook_path(target), data=body, headers=sign_generic(body, target))
    drain()
    (invitation,) = invitations(app)
    assert invitation.send_at == end + timedelta(hours=3)
    assert mailbox.messages == []
    with app.app_context():
        job_id = qualified(f"send_check_in-{invitation.id}")
    scheduled = redis_conn.zscore("rq:scheduled:rapport", job_id)
    assert scheduled == pytest.approx((end + timedelta(hours=3)).timestamp())


def waiting_invitation(app, generic_clinic_factory, web, drain) -> CheckIn:
    """A completed visit whose check-in waits three hours to be sent."""
    target = generic_clinic_factory(timing={"send_delay_minutes": 180})
    body = event_body()
    web.post(webhook_path(target), data=body, headers=sign_generic(body, target))
    drain()
    (invitation,) = invitations(app)
    return invitation


def test_a_send_woken_early_waits_again_in_a_fresh_job_process(app, generic_clinic_factory, web,
                                                              drain, mailbox, redis_conn):
    """RQ may start a scheduled job up to a second early, in a process of its own that
    has read nothing yet: putting the job back must not wait on its own transaction."""
    invitation = waiting_invitation(app, generic_clinic_factory, web, drain)
    with app.app_context():
        # The job for its time is still there: the one running now was woken by hand.
        plain = qualified(f"send_check_in-{invitation.id}")
        assert redis_conn.zscore("rq:scheduled:rapport", plain)
        app.extensions.pop("rapport.installation")  # as in a newly started job process
        send_check_in(invitation.id)
        again = qualified(f"send_check_in-{invitation.id}-at{int(invitation.send_at.timestamp())}")
    assert redis_conn.zscore("rq:scheduled:rapport", again) == invitation.send_at.timestamp()
    assert invitations(app)[0].status == "scheduled" and mailbox.messages == []


def test_a_send_woken_a_moment_early_waits_and_sends(app, generic_clinic_factory, web, drain,
                                                     mailbox):
    invitation = waiting_invitation(app, generic_clinic_factory, web, drain)
    with app.app_context():
        # Its time comes in a tenth of a second (the job waits for moments up to
        # EARLY_WAKE_SECONDS away), and RQ starts it now.
        with storage.session() as db:
            db.get(CheckIn, invitation.id).send_at = (
                datetime.now(timezone.utc) + timedelta(milliseconds=100))
        send_check_in(invitation.id)
    assert invitations(app)[0].status == "sent"
    assert len(mailbox.messages) == 1


def test_sending_window_moves_the_send_into_working_hours(app, generic_clinic_factory, web, drain):
    target = generic_clinic_factory(timing={"send_delay_minutes": 180, "window_start": "09:00",
                                            "window_end": "20:00"})
    # Ends 19:30 London time the next day: +3 h is 22:30, so it moves to 09:00 after.
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date()
    from zoneinfo import ZoneInfo

    london = ZoneInfo("Europe/London")
    end = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 19, 30, tzinfo=london)
    body = event_body(end=end.astimezone(timezone.utc))
    web.post(webhook_path(target), data=body, headers=sign_generic(body, target))
    drain()
    (invitation,) = invitations(app)
    expected = datetime.combine(tomorrow + timedelta(days=1), datetime.min.time(),
                                tzinfo=london).replace(hour=9)
    assert invitation.send_at == expected.astimezone(timezone.utc)


def test_a_check_in_stopped_when_it_was_due_keeps_no_address(
        app, generic_clinic_factory, web, drain, mailbox):
    """The visit was cancelled in a way only the send job saw (the status changed after
    the check-in was planned): nothing is sent, and the client's address is not kept."""
    target = generic_clinic_factory(timing={"send_delay_minutes": 60})
    body = event_body()
    web.post(webhook_path(target), data=body, headers=sign_generic(body, target))
    drain()
    (planned,) = invitations(app)
    assert planned.status == "scheduled" and planned.email
    with app.app_context(), storage.session() as db:
        due = db.get(CheckIn, planned.id)
        due.appointment.status = "cancelled"
        due.send_at = None  # due now
    with app.app_context():
        send_check_in(planned.id)
    (stopped,) = invitations(app)
    assert stopped.status == "cancelled"
    assert (stopped.email, stopped.first_name) == (None, None)
    assert mailbox.messages == []


def test_one_reminder_when_unanswered_then_expiry(app, generic_clinic_factory, web, drain, mailbox):
    target = generic_clinic_factory(timing={"reminder_after_hours": 0, "expire_after_days": 7})
    body = event_body()
    web.post(webhook_path(target), data=body, headers=sign_generic(body, target))
    drain()
    assert len(mailbox.messages) == 2
    first, reminder = mailbox.messages
    assert reminder["Subject"].startswith("Reminder")
    assert survey_path(first) != survey_path(reminder)  # a fresh link; both work
    for path in (survey_path(first), survey_path(reminder)):
        assert web.get(path).status_code == 200
    drain()
    assert len(mailbox.messages) == 2  # only one reminder, ever


def test_expired_invitation_shows_410(app, generic_clinic_factory, web, drain, mailbox):
    target = generic_clinic_factory(timing={"expire_after_days": 0, "reminder_after_hours": 48})
    body = event_body()
    web.post(webhook_path(target), data=body, headers=sign_generic(body, target))
    drain()
    path = survey_path(mailbox.messages[0])
    page = web.get(path)
    assert page.status_code == 410
    assert "closed" in page.get_data(as_text=True)
    assert invitations(app)[0].status == "expired"
    assert invitations(app)[0].email is None


def test_temporary_smtp_failure_is_retried_without_duplicates(app, deliver_generic, drain, mailbox):
    mailbox.refuse_with.append("451 4.3.0 Try again later")
    deliver_generic("appointment.completed")
    drain(within=15)
    assert len(mailbox.messages) == 1
    assert invitations(app)[0].status == "sent"


class QueuesThenStalls:
    """A mail server that queues each message as it arrives, then says nothing until it
    is let go (after the test): longer than any client waits."""

    def __init__(self) -> None:
        self.messages: list = []
        self.let_go = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        while not self.let_go.is_set():
            await asyncio.sleep(0.02)
        return "250 OK"


def test_a_mail_server_silent_after_the_message_is_not_sent_it_again(app, deliver_generic, drain):
    """The server had the whole message and said nothing until Rapport gave up: it may
    have delivered it, so it is not sent again (never emailed twice); the check-in is
    marked interrupted, and its link works if the message arrived."""
    server = QueuesThenStalls()
    controller = Controller(server, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        # Rapport gives up after a fifth of a second (a real server: its SMTP_TIMEOUT).
        app.config.update(SMTP_PORT=controller.port, SMTP_TIMEOUT=0.2)
        deliver_generic("appointment.completed")
        drain(within=5)  # retries, were there any, would come 1 s apart
    finally:
        server.let_go.set()
        controller.stop()
    assert len(server.messages) == 1
    (invitation,) = invitations(app)
    assert invitation.status == "interrupted"
    assert "may have been delivered" in invitation.reason
    assert app.test_client().get(survey_path(server.messages[0])).status_code == 200


class SilentAtFirstData(socketserver.ThreadingTCPServer):
    """A mail server whose first connection never answers the DATA command (so the
    message is never sent to it); later connections take the message."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.connections = 0
        self.let_go = threading.Event()
        super().__init__(("127.0.0.1", free_port()), self._Session)

    class _Session(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            server = self.server
            server.connections += 1
            first = server.connections == 1
            self.wfile.write(b"220 test ESMTP\r\n")
            while line := self.rfile.readline():
                command = line.strip().upper()
                if command.startswith(b"EHLO"):
                    self.wfile.write(b"250 test\r\n")
                elif command == b"DATA":
                    if first:  # silent past the client's timeout, having taken nothing
                        server.let_go.wait(10)
                        return
                    self.wfile.write(b"354 go ahead\r\n")
                    server.messages.append(b"".join(iter(self.rfile.readline, b".\r\n")))
                    self.wfile.write(b"250 queued\r\n")
                elif command == b"QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                else:
                    self.wfile.write(b"250 ok\r\n")


def test_a_mail_server_silent_before_taking_the_message_is_tried_again(app, deliver_generic, drain):
    """No answer to DATA: the server never had the message, so it is sent again (once),
    rather than the check-in being written off as perhaps delivered."""
    server = SilentAtFirstData()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app.config.update(SMTP_PORT=server.server_address[1], SMTP_TIMEOUT=0.2)
        deliver_generic("appointment.completed")
        drain(within=5)
    finally:
        server.let_go.set()
        server.shutdown()
        server.server_close()
    assert len(server.messages) == 1
    (invitation,) = invitations(app)
    assert invitation.status == "sent"


def test_permanently_refused_address_fails_plainly(app, deliver_generic, drain, mailbox):
    mailbox.refuse_with.append("550 5.1.1 No such user")
    deliver_generic("appointment.completed")
    drain()
    (invitation,) = invitations(app)
    assert invitation.status == "failed"
    assert "550" in invitation.reason


def test_a_failed_check_in_flags_the_clinic_until_a_later_one_goes_out(
        app, deliver_generic, drain, mailbox):
    from plugin.clinics import health
    from plugin.store.models import Clinic

    def summary():
        with app.app_context(), storage.session() as db:
            return health.clinic_summary(db, db.scalar(select(Clinic)))

    mailbox.refuse_with.append("550 5.1.1 No such user")
    deliver_generic("appointment.completed", appointment_id="A-1", client_id="C-1",
                    email="typo@example.com")
    drain()
    assert "550" in summary()["last_check_in_problem"]
    deliver_generic("appointment.completed", appointment_id="A-2", client_id="C-2",
                    email="sam@example.com")
    drain()
    settled = summary()
    assert "last_check_in_problem" not in settled
    assert settled["check_ins_last_7_days"] == {"failed": 1, "sent": 1}


def test_client_without_email_is_skipped_plainly(app, web, generic_clinic, drain, mailbox):
    document = json.loads(event_body())
    del document["data"]["client"]["email"]
    body = json.dumps(document).encode()
    web.post(webhook_path(generic_clinic), data=body, headers=sign_generic(body, generic_clinic))
    drain()
    assert mailbox.messages == []
    assert invitations(app)[0].reason == "the client has no email address"


def test_a_new_window_and_delay_move_a_waiting_check_in_to_now(
        app, generic_clinic_factory, web, drain, mailbox):
    from datetime import time
    from zoneinfo import ZoneInfo

    from click.testing import CliRunner

    from plugin.cli import main
    from plugin.pipeline.sending import send_check_in
    from tests.support.rapport import subprocess_env

    london = ZoneInfo("Europe/London")
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    tomorrow = (end.astimezone(london) + timedelta(days=1)).date()
    # A delay that ends at 06:00 tomorrow, before the window opens at 09:00.
    delay = int((datetime.combine(tomorrow, time(6), tzinfo=london) - end).total_seconds() // 60)
    target = generic_clinic_factory(timing={"send_delay_minutes": delay, "window_start": "09:00",
                                            "window_end": "20:00"})
    body = event_body(end=end)
    web.post(webhook_path(target), data=body, headers=sign_generic(body, target))
    drain()
    (planned,) = invitations(app)
    assert planned.send_at == datetime.combine(tomorrow, time(9), tzinfo=london)
    assert mailbox.messages == []

    result = CliRunner(env=subprocess_env(app)).invoke(main, [
        "clinic", "configure", target["key"], "--window", "00:00-24:00",
        "--send-delay-minutes", "0"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stderr == "1 pending check-in(s) re-planned to the new timing.\n"
    (replanned,) = invitations(app)
    assert replanned.status == "scheduled"
    assert replanned.send_at <= datetime.now(timezone.utc)

    drain()
    assert len(mailbox.messages) == 1
    assert invitations(app)[0].status == "sent"
    with app.app_context():  # the job queued for tomorrow 09:00, when it fires
        send_check_in(replanned.id)
    assert len(mailbox.messages) == 1


def test_no_reminder_after_unsubscribing_and_the_sweeper_stops_asking(
        app, generic_clinic_factory, web, drain, mailbox):
    from sqlalchemy import update

    from plugin.pipeline import sweeper

    target = generic_clinic_factory(timing={"reminder_after_hours": 48})
    body = event_body()
    web.post(webhook_path(target), data=body, headers=sign_generic(body, target))
    drain()
    (first,) = mailbox.messages
    assert web.post(survey_path(first) + "/unsubscribe",
                    data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with app.app_context():
        with storage.session() as db:
            db.execute(update(CheckIn).values(
                remind_at=datetime.now(timezone.utc) - timedelta(hours=1)))
        assert sweeper.sweep()["reminders"] == 1
        drain()
        assert len(mailbox.messages) == 1
        # The reminder is dropped rather than queued again by every sweep until expiry.
        assert sweeper.sweep()["reminders"] == 0
