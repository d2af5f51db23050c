"""The clinic admins' console, under ``/admin``: signing in (:mod:`.sign_in`, with
:mod:`.access` deciding who sees what and :mod:`.limits` how often links are asked
for), a clinic's connection (:mod:`.clinic`), its settings (:mod:`.settings_form`),
its health (:mod:`.health`), its dashboard (:mod:`.dashboard`, figures from
:mod:`.figures` drawn by :mod:`.charts`) and its data as CSV (:mod:`.export`).

Every page works without JavaScript (the content security policy allows none), every
form carries a CSRF token (Flask-WTF), and an admin sees only their own clinic.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, request

from plugin.web.admin import clinic, dashboard, export, health, settings_form, sign_in

BLUEPRINTS = (sign_in.bp, clinic.bp, settings_form.bp, health.bp, dashboard.bp, export.bp)


def local_time(moment: datetime | None, zone: str, style: str = "%-d %b %Y, %H:%M %Z") -> str:
    """A moment as the clinic reads it: in its time zone."""
    return moment.astimezone(ZoneInfo(zone)).strftime(style) if moment else "—"


def as_datetime(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def init_app(app: Flask) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.add_template_filter(local_time)
    app.add_template_filter(as_datetime)

    @app.after_request
    def private(response):
        # Console pages are one admin's: never kept by a shared cache or the browser's.
        if request.path.startswith("/admin"):
            response.headers["Cache-Control"] = "no-store"
        return response
