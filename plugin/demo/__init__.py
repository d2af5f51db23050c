"""``rapport demo``: the whole loop on one machine, each step printed plainly.

Everything is real: a private Redis server, a SQLite database, an SMTP server that
catches the mail (aiosmtpd), Rapport's web app and worker, and a simulated booking
system that signs its webhooks and verifies Rapport's callback.
"""

from __future__ import annotations

import html
import logging
import re
import shutil
import signal
import socket
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import requests
from aiosmtpd.controller import Controller
from rq.exceptions import StopRequested
from werkzeug.serving import make_server

from plugin import create_app
from plugin.clinics import admins, connecting, settings
from plugin.demo.booking_system import SimulatedBookingSystem
from plugin.pipeline import instruments
from plugin.store import database
from plugin.store.models import CheckIn, Clinic
from plugin.tasks import worker as runner
from plugin.tasks.embedded_redis import EmbeddedRedis, RedisUnavailable, redis_executable

DEMO_RULES = {"send_delay_minutes": 0, "window_start": "00:00", "window_end": "24:00"}


class MailCatcher:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def _serve(app, port: int):
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _LateApp:
    """Lets a server bind its port before the app that needs that port in its config."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


def _say(step: str, text: str = "") -> None:
    print(f"\n== {step}")
    for line in text.splitlines():
        print(f"   {line}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _show_email(message: EmailMessage) -> str:
    text = message.get_body(preferencelist=("plain",)).get_content().strip()
    headers = "\n".join(f"{name}: {message[name]}" for name in
                        ("From", "To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"))
    return f"{headers}\n\n{text}"


def _survey_link(message: EmailMessage) -> str:
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"https?://\S+/s/[A-Za-z0-9_-]+(?=\s)", text).group(0)


def _answer(link: str, instrument) -> requests.Response:
    """Fill in the survey over HTTP as a client's phone would."""
    session = requests.Session()
    page = session.get(link, timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    form = {"csrf_token": token,
            "comment": "Loved the session. Could we spend more time on my shoulders?"}
    first_subscale = instrument.items[0].subscale
    for item in instrument.items:
        high = instrument.scale.max if not item.reverse else instrument.scale.min
        middle = (instrument.scale.min + instrument.scale.max) // 2
        form[item.id] = str(middle if item.subscale == first_subscale else high)
    return session.post(link, data=form, timeout=10)


def run_demo(*, once: bool, port: int = 5000) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="rapport-demo-"))
    cleanup: list = [lambda: shutil.rmtree(workdir, ignore_errors=True)]
    try:
        return _run(workdir, once=once, port=port, cleanup=cleanup)
    except RedisUnavailable as error:
        print(f"\nThe demo needs Redis: {error}")
        return 1
    finally:
        for step in reversed(cleanup):
            step()


def _run(workdir: Path, *, once: bool, port: int, cleanup: list) -> int:
    # The steps are printed; the servers' own request logs would bury them.
    for name in ("werkzeug", "mail.log", "alembic", "plugin", "rq"):
        logging.getLogger(name).setLevel(logging.WARNING)
    print("Rapport demo: one appointment's journey, from booking to the therapist's note.")
    redis_server = EmbeddedRedis(workdir / "redis", persist=False)
    _say("1. Queue", f"Starting a private Redis server ({redis_executable()})\n"
                     f"on {redis_server.start()}")
    cleanup.append(redis_server.stop)

    catcher = MailCatcher()
    smtp_port = _free_port()
    smtp = Controller(catcher, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    cleanup.append(smtp.stop)

    booking = SimulatedBookingSystem()
    booking_server = _serve(booking.app, 0 if once else _port_or_free(5001))
    cleanup.append(booking_server.shutdown)
    booking_url = f"http://127.0.0.1:{booking_server.port}"

    rapport_app = _LateApp()
    rapport_server = _serve(rapport_app, 0 if once else _port_or_free(port))
    cleanup.append(rapport_server.shutdown)
    base_url = f"http://127.0.0.1:{rapport_server.port}"

    app = create_app({
        "ENV": "development", "INSTANCE_PATH": str(workdir),
        "DATABASE_URL": f"sqlite:///{workdir / 'rapport.db'}",
        "REDIS_URL": redis_server.url, "BASE_URL": base_url,
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp_port,
        "MAIL_FROM": "Harbour Massage via Rapport <checkin@harbour.example>",
    })
    rapport_app.app = app
    _say("2. Services",
         f"Database:        {app.config['DATABASE_URL']} (migrated)\n"
         f"Mail catcher:    SMTP on 127.0.0.1:{smtp_port} (aiosmtpd)\n"
         f"Rapport:         {base_url}\n"
         f"Booking system:  {booking_url} (simulated)")

    with app.app_context():
        added = connecting.add(name="Harbour Massage", platform_name="generic",
                               given={"callback_url": f"{booking_url}/rapport-callback"},
                               timezone="Europe/London", language=None)
        with database.session() as db:
            clinic = db.get(Clinic, added.clinic_id)
            clinic.settings = settings.updated(clinic.settings, timing=DEMO_RULES)
        described = added.shown
        booking.connect(webhook_url=described["webhook_url"],
                        webhook_secret=described["webhook_secret"],
                        callback_secret=described["callback_secret"])
        _say("3. Clinic connected (rapport clinic add --platform generic)",
             f"Webhook URL:      {described['webhook_url']}\n"
             f"Webhook secret:   {described['webhook_secret'][:14]}…\n"
             f"Callback URL:     {described['callback_url']}\n"
             "Sending rules:    at once, any hour (the real default is 3 hours after the\n"
             "                  visit, 09:00–20:00 in the clinic's time zone)")

        booking.add_client("C-7", "Sam", "sam@example.com")
        therapist = {"id": "T-2", "name": "Dana"}
        end = datetime.now(timezone.utc).replace(microsecond=0)
        appointment = {"id": "A-100", "start": (end - timedelta(hours=1)).isoformat(),
                       "end": end.isoformat(), "service": "Deep tissue 60"}
        booked = booking.send("appointment.booked", appointment, "C-7", therapist)
        completed = booking.send("appointment.completed", appointment, "C-7", therapist)
        _say("4. The booking system sends signed webhooks",
             f"appointment.booked     → {booked.status_code} {booked.json()['status']}\n"
             f"appointment.completed  → {completed.status_code} {completed.json()['status']}")

        runner.drain(forking=False)
        if not catcher.messages:
            print("\nNo email was sent; see the log above.")
            return 1
        email = catcher.messages[-1]
        _say("5. The worker sent the check-in email (no treatment, no health detail)",
             _show_email(email))

        link = _survey_link(email)
        with database.session() as db:
            instrument = instruments.get(db.query(CheckIn).one().instrument_id)
        answered = _answer(link, instrument)
        _say("6. Sam answers on their phone",
             f"GET  {link} → 200\nPOST (answers, CSRF token) → {answered.status_code}"
             f" {'Thank you' if 'Thank you' in answered.text else answered.text[:80]}")

        runner.drain(forking=False, wait_for_scheduled=5)
        if not booking.wait_for_callback(1):
            print("\nThe booking system received no callback; see the log above.")
            return 1
        event = booking.callbacks[-1]["event"]
        _say("7. The booking system received client.alliance_updated (signature verified)",
             f"overall {event['data']['scores']['overall']}/100, "
             f"{len(event['data']['talking_points'])} talking point(s), flags: "
             f"{[flag['code'] for flag in event['data']['flags']] or 'none'}")
        profile = requests.get(f"{booking_url}/clients/C-7", timeout=10).text
        notes = html.unescape(re.search(r"<pre>(.*?)</pre>", profile, re.S).group(1))
        _say(f"8. Sam's profile in the booking system ({booking_url}/clients/C-7)", notes)

        if once:
            print("\nDemo complete.")
            return 0
        booking.add_client("C-8", "Alex", "alex@example.com")
        second = {"id": "A-101", "start": (end - timedelta(hours=1)).isoformat(),
                  "end": end.isoformat(), "service": "Relaxation 60"}
        booking.send("appointment.completed", second, "C-8", therapist)
        runner.drain(forking=False)
        alex_link = _survey_link(catcher.messages[-1])
        # The demo admin, signed in by one click on this single-use link.
        console = admins.invite("admin@harbour.example", clinic_key=described["key"],
                                send=False).url
        _say("Try it yourself",
             f"Alex's check-in (open it on your phone or here): {alex_link}\n"
             f"Booking system, client pages:  {booking_url}/\n"
             f"Clinic admin's console (signs you in as admin@harbour.example):\n  {console}\n"
             "The worker keeps running; answer the survey and reload Alex's page.\n"
             "Press Ctrl-C to stop.")
        _work_until_interrupted()
    return 0


def _port_or_free(port: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return port
        except OSError:
            return 0


def _work_until_interrupted() -> None:
    stop = threading.Event()

    def stop_on_signals() -> None:
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())

    while not stop.is_set():
        try:
            # RQ's worker puts its own Ctrl-C handling in place while it runs jobs.
            runner.drain(forking=False)
        except (StopRequested, KeyboardInterrupt):
            break
        finally:
            stop_on_signals()
        stop.wait(0.5)
    print("\nStopped.")
