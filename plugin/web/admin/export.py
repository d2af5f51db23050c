"""The clinic's own data as CSV, one row per answered check-in in the period chosen:
the date, the therapist's and the client's ids in the booking platform, the
instrument, the scores, the band and the flags. No email address, no name, no comment.
Streamed row by row, so a long period does not sit in memory; tests are left out."""

from __future__ import annotations

import csv
import io
import json
import logging
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, render_template, request, stream_with_context
from sqlalchemy import select

from plugin.clinics import admins
from plugin.store import database
from plugin.store.models import CheckIn, Clinic
from plugin.store.models import Response as Answer
from plugin.web.admin import access, figures
from plugin.web.admin.dashboard import chosen_period

log = logging.getLogger(__name__)
bp = Blueprint("admin_export", __name__, url_prefix="/admin/clinics/<key>")

COLUMNS = ("date", "therapist_id", "client_id", "instrument", "instrument_version",
           "overall", "subscales", "band", "flags")
# A cell a spreadsheet would run as a formula starts with one of these: quoted.
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA) else text


def rows(clinic_id: int, period: figures.Period):
    """The CSV, a line at a time: the header, then each answer, oldest first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(value) for value in values])
        return buffer.getvalue()

    yield line(COLUMNS)
    with database.session() as db:
        answers = db.scalars(select(Answer).join(CheckIn, CheckIn.id == Answer.check_in_id)
                             .where(Answer.clinic_id == clinic_id, CheckIn.test.is_(False),
                                    Answer.submitted_at >= period.start,
                                    Answer.submitted_at < period.end)
                             .order_by(Answer.submitted_at, Answer.id)
                             .execution_options(yield_per=200))
        for answer in answers:
            summary = (answer.result or {}).get("summary") or {}
            subscales = {name: part.get("normalized") for name, part in
                         (summary.get("scores", {}).get("subscales") or {}).items()}
            yield line((
                answer.submitted_at.astimezone(period_zone(period)).date().isoformat(),
                answer.therapist_id, answer.client_external_id, answer.instrument_id,
                answer.instrument_version,
                "" if answer.overall is None else round(answer.overall, 1),
                json.dumps(subscales, sort_keys=True) if subscales else "",
                figures.band_of(answer)["id"],
                ";".join(flag.get("code", "") for flag in summary.get("flags", []))))


def period_zone(period: figures.Period):
    return ZoneInfo(period.zone)


def _form(who: admins.SignedIn, clinic: Clinic):
    period, errors = chosen_period(clinic, request.args)
    return render_template("admin/export.html", title=f"Export · {clinic.name}", who=who,
                           clinic=clinic, tab="export", errors=errors, columns=COLUMNS,
                           chosen={"from": request.args.get("from")
                                   or period.first.strftime("%Y-%m"),
                                   "to": request.args.get("to")
                                   or period.last.strftime("%Y-%m")}), 400 if errors else 200


@bp.get("/export")
@access.clinic_page
def page(who: admins.SignedIn, clinic: Clinic):
    return _form(who, clinic)


@bp.get("/export.csv")
@access.clinic_page
def download(who: admins.SignedIn, clinic: Clinic):
    period, errors = chosen_period(clinic, request.args)
    if errors:
        return _form(who, clinic)  # the form again, the refusal next to its field
    log.info("admin.exported: clinic %s by admin %s, %s to %s", clinic.id, who.admin_id,
             period.first, period.last)
    name = f"rapport-{clinic.key}-{period.first:%Y-%m}-to-{period.last:%Y-%m}.csv"
    return Response(stream_with_context(rows(clinic.id, period)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})
