"""CSRF protection for forms and the security headers every page carries.

A form whose CSRF check fails (the phone dropped its session cookie, the page was open
too long) gets a friendly page in the reader's language, never Werkzeug's bare 400; the
survey blueprint goes further and gives the client their form back (``plugin.web.survey``).
The session cookie is ``Secure`` when ``BASE_URL`` is https (``plugin.config``).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from plugin.i18n import pick_language, render_localized, supported_languages

log = logging.getLogger(__name__)
csrf = CSRFProtect()

# No script at all: the survey works without JavaScript, so none is allowed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def every_answer_headers(app: Flask) -> list[tuple[str, str]]:
    """What every answer carries, a page or JSON for a machine (the webhook receiver's
    too, which Flask does not see)."""
    headers = [("X-Content-Type-Options", "nosniff")]
    if app.config["BASE_URL"].startswith("https:"):
        headers.append(("Strict-Transport-Security", "max-age=31536000"))
    return headers


def trust_proxies(app: Flask) -> None:
    """Behind ``PROXY_COUNT`` reverse proxies, read the client's address, the scheme and
    the host from their ``X-Forwarded-*`` headers: the request is https when the proxy
    says so (Secure cookies, Flask-WTF's strict Referer check), and rate limits count
    the client rather than the proxy. With no proxy configured those headers are
    ignored, since anyone can send them."""
    count = app.config["PROXY_COUNT"]
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    app.register_error_handler(CSRFError, form_expired)
    always = every_answer_headers(app)

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        for name, value in always:
            headers[name] = value
        if response.mimetype != "text/html":
            return response  # JSON for machines: nothing to frame, no scripts to run
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers["X-Frame-Options"] = "DENY"
        # Survey links carry a token: never leak it to another site. Same-origin posts
        # keep their Referer, which Flask-WTF requires over https (WTF_CSRF_SSL_STRICT):
        # with "no-referrer" every answer sent over https would be refused.
        headers["Referrer-Policy"] = "same-origin"
        if request.path.startswith("/s/"):
            headers["Cache-Control"] = "no-store"
        return response


def form_expired(error: CSRFError):
    """A form posted without a valid CSRF token: say so plainly; nothing was saved."""
    log.info("security.csrf-failed: %s %s: %s", request.method, request.path,
             error.description)
    language = pick_language(request.accept_languages.best_match(supported_languages()))
    return render_localized("form_expired.html", language), 400

