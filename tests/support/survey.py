"""Reading check-in emails and answering surveys the way a client's phone does."""

from __future__ import annotations

import re
from email.message import EmailMessage

from sqlalchemy import select

from plugin.pipeline import instruments
from plugin.store import database as storage
from plugin.store.models import CheckIn

LINK = re.compile(r"https?://\S+?/s/([A-Za-z0-9_-]+)(?=\s)")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def survey_path(message: EmailMessage) -> str:
    return f"/s/{LINK.search(text_of(message)).group(1)}"


def csrf_token(html: str) -> str:
    return CSRF.search(html).group(1)


def answers_for(instrument, value=None, **overrides) -> dict[str, str]:
    """One answer per item meaning ``value`` once keyed (default: the best answer), so a
    reverse-keyed item gets the mirrored choice; ``overrides`` are given as they are."""
    scale = instrument.scale
    wanted = scale.max if value is None else value
    answers = {}
    for item in instrument.items:
        given = scale.min + scale.max - wanted if item.reverse else wanted
        answers[item.id] = str(overrides.get(item.id.replace("-", "_"), given))
    return answers


def answer(web, path: str, answers: dict[str, str], comment: str = ""):
    """GET the form (for its CSRF token), then POST the answers with Flask's test client
    ``web``: the response."""
    page = web.get(path)
    assert page.status_code == 200, page.status_code
    form = {"csrf_token": csrf_token(page.get_data(as_text=True)), **answers}
    if comment:
        form["comment"] = comment
    return web.post(path, data=form)


def answer_last_check_in(app, mailbox, value=None, comment: str = ""):
    """The client answers the latest check-in email (every item meaning ``value``)."""
    with app.app_context(), storage.session() as db:
        instrument = instruments.get(db.scalars(
            select(CheckIn.instrument_id).order_by(CheckIn.id.desc())).first())
    return answer(app.test_client(), survey_path(mailbox.messages[-1]),
                  answers_for(instrument, value), comment)
