"""The clinic's dashboard: response rate, alliance over time and by band, per
therapist (from five answers), open flags, and whether clients in each band booked
again, for a period of whole months the admin chooses (the last six by default)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request

from plugin.clinics import admins
from plugin.store import database
from plugin.store.models import Clinic
from plugin.web.admin import access, charts, figures

bp = Blueprint("admin_dashboard", __name__, url_prefix="/admin/clinics/<key>")

LONGEST = 36  # months in one period


def _month(text: str) -> date:
    return datetime.strptime(text, "%Y-%m").date()


def chosen_period(clinic: Clinic, args) -> tuple[figures.Period, dict[str, str]]:
    """The period asked for in ``from`` and ``to`` (YYYY-MM), or the last six months;
    with a message per field that was refused (the default stands in for it)."""
    default = figures.months_back(6, clinic.timezone)
    errors: dict[str, str] = {}
    first, last = default.first, default.last
    for name in ("from", "to"):
        text = (args.get(name) or "").strip()
        if not text:
            continue
        try:
            value = _month(text)
        except ValueError:
            errors[name] = "Give a month as YYYY-MM, e.g. 2026-11."
            continue
        if name == "from":
            first = value
        else:
            last = value
    if not errors and first > last:
        errors["to"] = "The period must end after it starts."
    elif not errors and (last.year - first.year) * 12 + last.month - first.month >= LONGEST:
        errors["from"] = f"Choose at most {LONGEST} months."
    if errors:
        first, last = default.first, default.last
    return figures.Period(first, last, clinic.timezone), errors


def build(clinic: Clinic, period: figures.Period) -> dict:
    with database.session() as db:
        clinic = db.get(Clinic, clinic.id)
        rate = figures.response_rate(db, clinic, period)
        alliance = figures.alliance(db, clinic, period)
        therapists = figures.by_therapist(db, clinic, period)
        flags = figures.open_flags(db, clinic, period)
        retention = figures.retention(db, clinic, period)
    months = period.months
    statuses = [("sent", "Sent"), ("answered", "Answered"), ("expired", "Expired")]
    bands = [(band["id"], band["label"]) for band in alliance["bands"]]
    horizons = [(str(days), f"Within {days} days") for days in retention["horizons"]]
    return {
        "rate": rate, "alliance": alliance, "therapists": therapists, "flags": flags,
        "retention": retention, "minimum": figures.MINIMUM_ANSWERS,
        "totals": {key: sum(row[key] for row in rate) for key, _ in statuses},
        "rate_chart": charts.grouped(months, statuses, {
            (row["month"], key): row[key] for row in rate for key, _ in statuses}),
        "median_chart": charts.line(months, {row["month"]: row["median"]
                                             for row in alliance["months"]}),
        "band_chart": charts.stacked(months, bands, {
            (row["month"], band): count for row in alliance["months"]
            for band, count in row["bands"].items()}),
        "retention_chart": charts.grouped(
            [row["label"] for row in retention["bands"]], horizons,
            {(row["label"], str(days)): cell["share"] or 0
             for row in retention["bands"] for days, cell in row["horizons"].items()},
            top=100, suffix="%"),
    }


@bp.get("/dashboard")
@access.clinic_page
def page(who: admins.SignedIn, clinic: Clinic):
    period, errors = chosen_period(clinic, request.args)
    local = ZoneInfo(clinic.timezone)
    return render_template(
        "admin/dashboard.html", title=f"Dashboard · {clinic.name}", who=who, clinic=clinic,
        tab="dashboard", period=period, errors=errors, local=local,
        chosen={"from": request.args.get("from") or period.first.strftime("%Y-%m"),
                "to": request.args.get("to") or period.last.strftime("%Y-%m")},
        figures=build(clinic, period)), 400 if errors else 200
