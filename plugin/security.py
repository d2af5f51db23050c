"""CSRF protection for forms and the security headers every page carries."""

from __future__ import annotations

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()

# No script at all: the survey works without JavaScript, so none is allowed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    app.config.setdefault("SESSION_COOKIE_SECURE", app.config["BASE_URL"].startswith("https:"))

    app.session_interface = PagesOnlySessions()
    https = app.config["BASE_URL"].startswith("https:")

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers["X-Content-Type-Options"] = "nosniff"
        if https:
            headers["Strict-Transport-Security"] = "max-age=31536000"
        if response.mimetype != "text/html":
            return response  # JSON for machines: nothing to frame, no scripts to run
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers["X-Frame-Options"] = "DENY"
        # Survey links carry a token: never leak it to another site.
        headers["Referrer-Policy"] = "no-referrer"
        if request.path.startswith("/s/"):
            headers["Cache-Control"] = "no-store"
        return response


class PagesOnlySessions(SecureCookieSessionInterface):
    """Only pages people fill in need a session (for the CSRF token); webhooks never
    do, so they skip the cookie's signature check."""

    def open_session(self, app: Flask, request: Request):
        if request.path.startswith("/webhooks/"):
            return self.null_session_class()
        return super().open_session(app, request)
