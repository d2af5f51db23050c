"""Signing in to the console from tests, the way an admin's browser does: a link from
``rapport admin invite`` (or the sign-in page's email), its button, the cookie."""

from __future__ import annotations

import html
import re
from urllib.parse import urlparse

import requests

from plugin.clinics import admins

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
NEXT = re.compile(r'name="next" value="([^"]+)"')
LINK = re.compile(r"https?://\S+/admin/sign-in/[A-Za-z0-9_-]+(?:\?\S+)?")


def token_of(page_text: str) -> str:
    found = CSRF.search(page_text)
    assert found, "no CSRF token on the page"
    return found.group(1)


def invite(app, email: str, clinic_key: str | None = None, *, operator: bool = False) -> str:
    """Make ``email`` an admin (no email sent); the path of their sign-in link."""
    with app.app_context():
        invited = admins.invite(email, clinic_key=clinic_key, operator=operator, send=False)
    parts = urlparse(invited.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def follow_link(web, path: str):
    """Open a sign-in link and press its button; the answer to the button."""
    page = web.get(path)
    text = page.get_data(as_text=True)
    assert page.status_code == 200, text
    fields = {"csrf_token": token_of(text)}
    wanted = NEXT.search(text)
    if wanted:
        fields["next"] = html.unescape(wanted.group(1))
    return web.post(path.split("?")[0], data=fields)


def sign_in(app, web, email: str, clinic_key: str | None = None, *,
            operator: bool = False):
    answer = follow_link(web, invite(app, email, clinic_key, operator=operator))
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return web


def post_form(web, page_path: str, target: str | None = None, **fields):
    """Post a console form to ``target`` (default: the page) with the page's CSRF token."""
    page = web.get(page_path)
    return web.post(target or page_path,
                       data={"csrf_token": token_of(page.get_data(as_text=True)), **fields})


def link_in(message) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    return LINK.search(body).group(0)


def browser_session(app, base_url: str, email: str = "operator@rapport.test"):
    """A ``requests`` session signed in to Rapport at ``base_url`` as an operator."""
    path = invite(app, email, operator=True)
    session = requests.Session()
    page = session.get(f"{base_url}{path}", timeout=10)
    answer = session.post(f"{base_url}{path.split('?')[0]}", timeout=10,
                          data={"csrf_token": token_of(page.text)}, allow_redirects=False)
    assert answer.status_code == 303, answer.text
    return session
