"""``rapport demo --platform NAME``: the loop against the local stand-in of a booking
platform, the one Rapport's tests use, so a new user can watch that platform's path.

The stand-ins are test code: they live in ``tests/sandboxes/`` of a source checkout, whose
``DEMOS`` names the demo of each (the protocol is ``tests/sandboxes/demo.py``). This
module names no platform: it takes the name it is given, finds its demo there, and drives
it through the same steps for every platform — the clinic added as ``rapport clinic add``
adds it, the events the platform sends, the email, the answers, the notes in the
platform, the next booking's talking points, and the calls Rapport made.

From an installed package (no checkout beside it) it says so, and how to run it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from plugin.clinics import connecting, settings
from plugin.demo.steps import (
    DEMO_RULES,
    LOOPBACK,
    answer,
    port_or_free,
    quiet,
    say,
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

REGISTRY = "tests.sandboxes"
CHECKOUT = Path(__file__).resolve().parents[2]


def _registry() -> Any:
    """``tests.sandboxes`` of this source checkout, or None from an installed package."""
    if not (CHECKOUT / "tests" / "sandboxes" / "__init__.py").is_file():
        return None
    try:
        module = importlib.import_module(REGISTRY)
    except ModuleNotFoundError:
        # `rapport` started from .venv/bin: the checkout is not on the path, as it is for
        # `python -m plugin` run in it (make demo).
        sys.path.append(str(CHECKOUT))
        module = importlib.import_module(REGISTRY)
    found = getattr(module, "__file__", None)
    if found is None or Path(found).resolve().parents[2] != CHECKOUT:
        return None  # another project's `tests` package came first
    return module


def find(name: str) -> Any:
    """The demo class for platform ``name``, or a message saying why there is none."""
    registry = _registry()
    if registry is None:
        return (f"`rapport demo --platform {name}` runs against a local stand-in of {name}, "
                "which is kept with Rapport's tests (tests/sandboxes/) in a source checkout; "
                "this installation has none. In a checkout of Rapport, run:\n"
                f"  make demo PLATFORM={name}\n"
                "(`rapport demo` alone runs the loop with a simulated booking system.)")
    demos = registry.DEMOS
    if name not in demos:
        return (f"no stand-in demo for {name!r}; these have one: {', '.join(sorted(demos))} "
                "(and `rapport demo` alone, with a simulated booking system)")
    module_name, _, class_name = demos[name].partition(":")
    try:
        demo = getattr(importlib.import_module(module_name), class_name)
    except ImportError as error:
        return (f"the {name} stand-in needs Rapport's development dependencies ({error.name} "
                f"is missing): run `make demo PLATFORM={name}`, which installs them")
    why = demo.unavailable()
    return why if why else demo


def run(demo_class: Any, workdir: Path, *, once: bool, port: int, cleanup: list,
        host: str = LOOPBACK) -> int:
    quiet()
    demo = demo_class()
    print(f"Rapport demo on {demo.title}: one appointment's journey, from booking to the "
          f"therapist's note,\nagainst a local {demo.title} (the stand-in Rapport's tests use).")
    redis_url = start_redis(workdir, cleanup)
    stand_in_url = demo.start()
    cleanup.append(demo.stop)
    services = start_rapport(workdir, redis_url, port=0 if once else port_or_free(port, host),
                             cleanup=cleanup, config=demo.settings(), host=host)
    app, catcher = services.app, services.catcher
    demo.rapport_url = services.base_url
    say("2. Services",
        f"Database:        {app.config['DATABASE_URL']} (migrated)\n"
        f"Mail catcher:    SMTP on 127.0.0.1:{services.smtp_port} (aiosmtpd)\n"
        f"Rapport:         {services.base_url}\n"
        f"{demo.title + ':':<16} {stand_in_url} (local stand-in)")

    with app.app_context():
        added = _connect(demo)
        say("3. Clinic connected", "\n".join(added))
        say(f"4. Sam's visit, booked in {demo.title}", "\n".join(demo.book()))
        runner.drain(forking=False)
        say("5. The visit is over", "\n".join(demo.complete(_clinic_id())))
        runner.drain(forking=False)
        if not catcher.messages:
            print("\nNo email was sent; see the log above.")
            return 1
        email = catcher.messages[-1]
        say("6. The worker sent the check-in email (no treatment, no health detail)",
            show_email(email))
        link = survey_link(email)
        with database.session() as db:
            instrument = instruments.get(db.query(CheckIn).one().instrument_id)
        answered = answer(link, instrument)
        say("7. Sam answers on their phone",
            f"GET  {link} → 200\nPOST (answers, CSRF token) → {answered.status_code}"
            f" {'Thank you' if 'Thank you' in answered.text else answered.text[:80]}")
        runner.drain(forking=False, wait_for_scheduled=5)
        say(f"8. Sam's notes in {demo.title}, as the therapist sees them (their own text kept)",
            demo.client_notes())
        booked_again = demo.book_next()
        runner.drain(forking=False, wait_for_scheduled=5)
        say("9. Sam books again: the talking points go on that appointment",
            "\n".join(booked_again + ["", demo.next_booking_notes() or "(none)"]))
        say(f"10. What Rapport asked of {demo.title}", "\n".join(demo.calls()))
        if once:
            print("\nDemo complete.")
            return 0
        say("Try it yourself",
            f"Rapport:  {services.base_url}\n{demo.title}: {stand_in_url} (its API)\n"
            "The worker keeps running. Press Ctrl-C to stop.")
        work_until_interrupted()
    return 0


def _connect(demo: Any) -> list[str]:
    """The clinic added as `rapport clinic add` adds it; the lines it prints."""
    added = connecting.add(name="Harbour Massage", platform_name=demo.platform,
                           given=demo.connect_fields(), timezone="Europe/London",
                           language=None)
    with database.session() as db:
        clinic = db.get(Clinic, added.clinic_id)
        clinic.settings = settings.updated(
            clinic.settings, timing={**DEMO_RULES, "completion_grace_minutes": 0})
    lines = [f"$ {demo.command}"]
    lines += [f"{label:<26} {added.shown[key]}" for label, key in added.labels]
    registered = added.shown.get("webhook_registered")
    if registered is not None:
        lines.append(f"{'Webhook registered:':<26} {'yes, by Rapport' if registered else 'no'}")
    lines += [line for line in added.next_steps if line]
    lines += demo.connected(added.shown)
    lines += ["Sending rules:             at once, any hour, visits checked at their end",
              "                           (the real default: 3 hours after the visit, 09:00–20:00",
              "                           in the clinic's time zone, 15 minutes' grace)"]
    return lines


def _clinic_id() -> int:
    with database.session() as db:
        return db.query(Clinic.id).one()[0]
