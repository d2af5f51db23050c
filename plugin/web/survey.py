"""The client's pages: ``/s/<token>`` (the check-in) and ``/s/<token>/unsubscribe``.

They work without JavaScript and on a phone. A link is single use: once answered, a
second submit shows "already answered" and changes nothing. Unknown links get a
friendly 404 and closed ones a 410. A submit whose CSRF check fails (a phone that
dropped its session cookie) records nothing and gives the form back, the answers still
chosen, with a fresh token and a line asking to send it again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from flask import Blueprint, abort, render_template, request
from flask_wtf.csrf import CSRFError
from marshmallow import ValidationError
from redis.exceptions import RedisError
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from plugin.i18n import pick_language, render_localized, supported_languages, translator
from plugin.metrics import CHECK_INS
from plugin.pipeline import addresses, instruments
from plugin.pipeline.assessment import assessment_for
from plugin.pipeline.write_back import queue_write_back
from plugin.store import database, sealing
from plugin.store.models import CheckIn, OptOut, Response, SurveyLink, WriteBack
from plugin.web.security import csrf, form_expired
from questionnaires import answer_schema, score

log = logging.getLogger(__name__)
bp = Blueprint("survey", __name__)

ANSWERABLE = ("sending", "sent", "interrupted")


def _find(db, token: str) -> CheckIn | None:
    link = db.scalar(select(SurveyLink).where(SurveyLink.token_hash == sealing.token_digest(token)))
    return link.check_in if link is not None else None


def _check_in(db, token: str) -> CheckIn:
    check_in = _find(db, token)
    if check_in is None:
        abort(404)
    return check_in


def _language(check_in: CheckIn | None) -> str:
    browser = request.accept_languages.best_match(supported_languages())
    if check_in is None:
        return pick_language(browser)
    return pick_language(check_in.locale, browser, check_in.clinic.language)


def _closed(check_in: CheckIn) -> bool:
    now = datetime.now(timezone.utc)
    return check_in.status not in ANSWERABLE or (
        check_in.expires_at is not None and check_in.expires_at <= now)


def _page(template: str, status: int, check_in: CheckIn | None, **context):
    language = _language(check_in)
    clinic = check_in.clinic.name if check_in else None
    # How the clinic asked to be reached, for the pages that are a dead end otherwise.
    contact = (((check_in.clinic.settings or {}).get("sender") or {}).get("contact")
               if check_in else None)
    return render_localized(template, language, clinic_name=clinic, contact=contact,
                            **context), status


def _form_page(status: int, check_in: CheckIn, form, **context):
    """The check-in form. Its items are in the language the instrument has (a licensed
    file may lack the client's), which is the page's ``lang``; Rapport's own words
    (buttons, hints) stay in the client's language, marked with theirs where they differ."""
    chrome = _language(check_in)
    page = render_template("survey/form.html", _=translator(chrome), language=form.language,
                           chrome_language=chrome, clinic_name=check_in.clinic.name,
                           form=form, test=check_in.test, **context)
    return page, status


def _unanswerable_page(check_in: CheckIn):
    """The page for a link that can no longer be answered, or None while it can."""
    if check_in.status == "answered":
        return _page("survey/already_answered.html", 200, check_in)
    if _closed(check_in):
        return _page("survey/closed.html", 410, check_in)
    return None


def _instrument_and_form(check_in: CheckIn):
    """The check-in's instrument, and its form in the client's language."""
    instrument = instruments.available(check_in.instrument_id,
                                       clinic_id=check_in.clinic_id)
    return instrument, instrument.localized(_language(check_in))


@bp.errorhandler(404)
def not_found(_error):
    return _page("survey/unknown.html", 404, None)


@bp.errorhandler(CSRFError)
def session_lost(error: CSRFError):
    """The form came back without a valid CSRF token (no session cookie, or a stale
    one): nothing is recorded from it; the client gets the form back with the answers
    that are valid for the instrument still chosen, and a fresh token."""
    token = (request.view_args or {}).get("token")
    if request.endpoint != "survey.check_in" or not token:
        return form_expired(error)
    log.info("survey.csrf-failed: %s", error.description)
    with database.reading() as db:
        check_in = _find(db, token)
        if check_in is None:
            return _page("survey/unknown.html", 404, None)
        refusal = _unanswerable_page(check_in)
        if refusal is not None:
            return refusal
        instrument, form = _instrument_and_form(check_in)
        return _form_page(400, check_in, form, token=token, errors={}, resubmit=True,
                          values=_valid_answers(instrument, request.form.to_dict()))


def _valid_answers(instrument, submitted: dict[str, str]) -> dict[str, str]:
    """The submitted fields the instrument accepts, as the form shows them."""
    try:
        loaded = answer_schema(instrument).load(submitted, partial=True)
        valid = {**loaded["answers"], "comment": loaded["comment"]}
    except ValidationError as error:
        valid = error.valid_data or {}
    return {name: str(value) for name, value in valid.items() if value is not None}


@bp.get("/s/<token>")
def check_in_form(token: str):
    # Only reads: a link anyone can try never takes the database's write lock.
    with database.reading() as db:
        check_in = _check_in(db, token)
        refusal = _unanswerable_page(check_in)
        if refusal is not None:
            return refusal
        _instrument, form = _instrument_and_form(check_in)
        return _form_page(200, check_in, form, token=token, errors={}, values={})


@bp.post("/s/<token>")
def check_in(token: str):
    with database.session() as db:
        check_in = _check_in(db, token)
        refusal = _unanswerable_page(check_in)
        if refusal is not None:
            return refusal
        instrument, form = _instrument_and_form(check_in)
        try:
            submitted = answer_schema(instrument).load(request.form.to_dict())
        except ValidationError as error:
            return _form_page(400, check_in, form, token=token, errors=error.messages,
                              values=request.form.to_dict())
        answers, comment = submitted["answers"], submitted["comment"] or None
        blank = [item.id for item in instrument.items if item.id not in answers]
        if blank and not score(instrument, answers).scored:
            # More left blank than the instrument can fill in: ask for those answers.
            return _form_page(400, check_in, form, token=token,
                              errors={item_id: ["blank"] for item_id in blank},
                              values=request.form.to_dict())
        answered_at = datetime.now(timezone.utc)
        claimed = db.execute(update(CheckIn).where(
            CheckIn.id == check_in.id, CheckIn.status.in_(ANSWERABLE))
            .values(status="answered", answered_at=answered_at, email=None, first_name=None)
        ).rowcount == 1
        if not claimed:
            return _page("survey/already_answered.html", 200, check_in)
        CHECK_INS.labels("answered").inc()
        response = Response(
            check_in_id=check_in.id, clinic_id=check_in.clinic_id,
            client_external_id=check_in.client_external_id,
            therapist_id=check_in.therapist_id, instrument_id=instrument.id,
            instrument_version=str(instrument.version), answers=answers, comment=comment,
            submitted_at=answered_at)
        db.add(response)
        db.flush()
        # Assessed once, now: the write-back, its retries and the next booking's note read it.
        note = assessment_for(db, response)["note"]
        if check_in.test:
            # An admin's test: show the note the therapist would read; write nothing back.
            return _page("survey/thanks.html", 200, check_in, test=True, test_note=note)
        write_back = WriteBack(response_id=response.id, clinic_id=check_in.clinic_id)
        db.add(write_back)
        db.flush()
        write_back_id = write_back.id
        page = _page("survey/thanks.html", 200, check_in)
    try:
        queue_write_back(write_back_id)
    except RedisError as error:
        # The answer and its pending write-back are stored: the sweeper queues it once the
        # queue answers again. The client is thanked either way.
        log.warning("survey.queue-unavailable: write-back %s left to the sweeper: %s",
                    write_back_id, error)
    return page


@bp.get("/s/<token>/unsubscribe")
def unsubscribe_page(token: str):
    with database.reading() as db:
        check_in = _check_in(db, token)
        return _page("survey/unsubscribe.html", 200, check_in, token=token)


@bp.post("/s/<token>/unsubscribe")
@csrf.exempt  # RFC 8058: mail clients POST here with no page, hence no CSRF token
def unsubscribe(token: str):
    with database.session() as db:
        check_in = _check_in(db, token)
        dialect = postgresql if db.bind.dialect.name == "postgresql" else sqlite
        moment = datetime.now(timezone.utc)
        db.execute(dialect.insert(OptOut).values(
            clinic_id=check_in.clinic_id, client_external_id=check_in.client_external_id,
            created_at=moment).on_conflict_do_nothing())
        # And the person, whatever profile the clinic's platform files them under next.
        addresses.opt_out(db, check_in.clinic_id, check_in.address_hash
                          or addresses.address_hash(check_in.email), moment)
        # Honoured at once: nothing more is sent, and no address is kept.
        db.execute(update(CheckIn).where(
            CheckIn.clinic_id == check_in.clinic_id,
            CheckIn.client_external_id == check_in.client_external_id,
            CheckIn.status == "scheduled").values(
            status="cancelled", reason="the client opted out", email=None, first_name=None))
        db.execute(update(CheckIn).where(
            CheckIn.clinic_id == check_in.clinic_id,
            CheckIn.client_external_id == check_in.client_external_id)
            .values(email=None, first_name=None))
        log.info("survey.opted-out: clinic %s", check_in.clinic_id)
        return _page("survey/unsubscribed.html", 200, check_in, token=token)


@bp.post("/s/<token>/resubscribe")
def resubscribe(token: str):
    """The way back: the client changed their mind (from the page that unsubscribed
    them, so with its form's CSRF token). Check-ins cancelled meanwhile stay cancelled;
    the next visits get them again."""
    with database.session() as db:
        check_in = _check_in(db, token)
        db.execute(delete(OptOut).where(
            OptOut.clinic_id == check_in.clinic_id,
            OptOut.client_external_id == check_in.client_external_id))
        addresses.opt_back_in(db, check_in.clinic_id, check_in.address_hash)
        log.info("survey.opted-back-in: clinic %s", check_in.clinic_id)
        return _page("survey/resubscribed.html", 200, check_in)
