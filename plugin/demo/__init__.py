"""``rapport demo``: the whole loop on one machine, each step printed plainly.

Everything is real: a private Redis server, a SQLite database, an SMTP server that
catches the mail (aiosmtpd), Rapport's web app and worker, and a booking system: by
default a simulated one that speaks the generic platform (it signs its webhooks and
verifies Rapport's callback); with ``--platform NAME``, the local stand-in of that booking
platform the tests use (:mod:`plugin.demo.stand_ins`).
"""

from __future__ import annotations

import html
import re
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from plugin.clinics import admins, connecting, settings
from plugin.demo import stand_ins
from plugin.demo.booking_system import SimulatedBookingSystem
from plugin.demo.steps import (
    DEMO_RULES,
    LOOPBACK,
    answer,
    port_or_free,
    quiet,
    reachable_address,
    say,
    serve,
    show_email,
    start_rapport,
    start_redis,
    survey_link,
    work_until_interrupted,
)
from plugin.pipeline import instruments
from plugin.store import database
from plugin.store.models import CheckIn, Clinic
from plugin.tasks import worker as runner
from plugin.tasks.embedded_redis import RedisUnavailable

SIMULATED = "generic"  # the platform the simulated booking system speaks


def run_demo(*, once: bool, port: int = 5000, platform: str = SIMULATED,
             host: str = LOOPBACK) -> int:
    if platform != SIMULATED:
        found = stand_ins.find(platform)
        if isinstance(found, str):
            print(found)
            return 1
    workdir = Path(tempfile.mkdtemp(prefix="rapport-demo-"))
    cleanup: list = [lambda: shutil.rmtree(workdir, ignore_errors=True)]
    try:
        if platform != SIMULATED:
            return stand_ins.run(found, workdir, once=once, port=port, cleanup=cleanup,
                                 host=host)
        return _run(workdir, once=once, port=port, cleanup=cleanup, host=host)
    except RedisUnavailable as error:
        print(f"\nThe demo needs Redis: {error}")
        return 1
    finally:
        for step in reversed(cleanup):
            step()


def _run(workdir: Path, *, once: bool, port: int, cleanup: list, host: str) -> int:
    quiet()
    print("Rapport demo: one appointment's journey, from booking to the therapist's note.")
    redis_url = start_redis(workdir, cleanup)

    booking = SimulatedBookingSystem()
    booking_server = serve(booking.app, 0 if once else port_or_free(5001, host), host)
    cleanup.append(booking_server.shutdown)
    booking_url = f"http://{reachable_address(host)}:{booking_server.port}"

    services = start_rapport(workdir, redis_url, port=0 if once else port_or_free(port, host),
                             cleanup=cleanup, host=host)
    app, base_url, catcher = services.app, services.base_url, services.catcher
    say("2. Services",
        f"Database:        {app.config['DATABASE_URL']} (migrated)\n"
        f"Mail catcher:    SMTP on 127.0.0.1:{services.smtp_port} (aiosmtpd)\n"
        f"Rapport:         {base_url}\n"
        f"Booking system:  {booking_url} (simulated)")

    with app.app_context():
        added = connecting.add(name="Harbour Massage", platform_name=SIMULATED,
                               given={"callback_url": f"{booking_url}/rapport-callback"},
                               timezone="Europe/London", language=None)
        with database.session() as db:
            clinic = db.get(Clinic, added.clinic_id)
            clinic.settings = settings.updated(clinic.settings, timing=DEMO_RULES)
        described = added.shown
        booking.connect(webhook_url=described["webhook_url"],
                        webhook_secret=described["webhook_secret"],
                        callback_secret=described["callback_secret"])
        say("3. Clinic connected (rapport clinic add --platform generic)",
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
        say("4. The booking system sends signed webhooks",
             f"appointment.booked     → {booked.status_code} {booked.json()['status']}\n"
             f"appointment.completed  → {completed.status_code} {completed.json()['status']}")

        runner.drain(forking=False)
        if not catcher.messages:
            print("\nNo email was sent; see the log above.")
            return 1
        email = catcher.messages[-1]
        say("5. The worker sent the check-in email (no treatment, no health detail)",
             show_email(email))

        link = survey_link(email)
        with database.session() as db:
            instrument = instruments.get(db.query(CheckIn).one().instrument_id)
        answered = answer(link, instrument)
        say("6. Sam answers on their phone",
             f"GET  {link} → 200\nPOST (answers, CSRF token) → {answered.status_code}"
             f" {'Thank you' if 'Thank you' in answered.text else answered.text[:80]}")

        runner.drain(forking=False, wait_for_scheduled=5)
        if not booking.wait_for_callback(1):
            print("\nThe booking system received no callback; see the log above.")
            return 1
        event = booking.callbacks[-1]["event"]
        say("7. The booking system received client.alliance_updated (signature verified)",
             f"overall {event['data']['scores']['overall']}/100, "
             f"{len(event['data']['talking_points'])} talking point(s), flags: "
             f"{[flag['code'] for flag in event['data']['flags']] or 'none'}")
        profile = requests.get(f"{booking_url}/clients/C-7", timeout=10).text
        notes = html.unescape(re.search(r"<pre>(.*?)</pre>", profile, re.S).group(1))
        say(f"8. Sam's profile in the booking system ({booking_url}/clients/C-7)", notes)

        if once:
            print("\nDemo complete.")
            return 0
        booking.add_client("C-8", "Alex", "alex@example.com")
        second = {"id": "A-101", "start": (end - timedelta(hours=1)).isoformat(),
                  "end": end.isoformat(), "service": "Relaxation 60"}
        booking.send("appointment.completed", second, "C-8", therapist)
        runner.drain(forking=False)
        alex_email = catcher.messages[-1]
        alex_link = survey_link(alex_email)
        # The demo admin, signed in by one click on this single-use link.
        console = admins.invite("admin@harbour.example", clinic_key=described["key"],
                                send=False).url
        say("Alex, another client, was just sent this email", show_email(alex_email))
        phone = ("open it on your phone, on the same network as this machine"
                 if host != LOOPBACK else
                 "open it here; with `rapport demo --host 0.0.0.0`, on your phone too")
        say("Try it yourself",
             f"Alex's check-in ({phone}):\n  {alex_link}\n"
             f"Booking system, client pages:  {booking_url}/\n"
             f"Clinic admin's console (signs you in as admin@harbour.example):\n  {console}\n"
             "The worker keeps running; answer the survey and reload Alex's page.\n"
             "Press Ctrl-C to stop.")
        work_until_interrupted()
    return 0
