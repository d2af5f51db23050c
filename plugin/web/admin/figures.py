"""The dashboard's figures for one clinic and a period of whole months, in the clinic's
time zone. Pure queries: no page, no chart (see :mod:`.charts`).

- response rate: check-ins sent each month, and how many of those were answered or
  expired;
- alliance: the median overall score (0–100) of each month's answers, and how many fell
  in each band;
- per therapist: answers and median, shown only from :data:`MINIMUM_ANSWERS` answers up,
  so nobody is judged on two clients;
- open flags: clients whose latest answer in the period dropped against their baseline,
  was low, or had a low part;
- alliance and retention: of the clients whose last answered check-in in the period was
  in a band, the share with another booking (not cancelled) starting within 30, 60 and
  90 days after that visit. A client counts for a horizon only once it has fully passed.

An admin's test check-ins are left out of every figure.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select

from plugin.pipeline import instruments
from plugin.store.models import Appointment, CheckIn, Clinic, Response
from questionnaires.language import pick

MINIMUM_ANSWERS = 5
HORIZONS = (30, 60, 90)
ALERTING = frozenset({"drop", "first_low", "low_subscale"})
NO_BAND = {"id": "unscored", "label": "Not scored"}


@dataclass(frozen=True)
class Period:
    """Whole months, ``first`` to ``last`` (the first day of each), in ``zone``."""

    first: date
    last: date
    zone: str

    @property
    def months(self) -> list[str]:
        found, month = [], self.first
        while month <= self.last:
            found.append(month.strftime("%Y-%m"))
            month = (month + timedelta(days=32)).replace(day=1)
        return found

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=ZoneInfo(self.zone)).astimezone(
            timezone.utc)

    @property
    def end(self) -> datetime:
        after = (self.last + timedelta(days=32)).replace(day=1)
        return datetime.combine(after, time(0), tzinfo=ZoneInfo(self.zone)).astimezone(
            timezone.utc)

    def month_of(self, moment: datetime) -> str:
        return moment.astimezone(ZoneInfo(self.zone)).strftime("%Y-%m")


def months_back(count: int, zone: str, today: date | None = None) -> Period:
    """The last ``count`` months, this one included."""
    today = today or datetime.now(ZoneInfo(zone)).date()
    last = today.replace(day=1)
    first = last
    for _ in range(count - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    return Period(first, last, zone)


def response_rate(db, clinic: Clinic, period: Period) -> list[dict]:
    counts = {month: {"month": month, "sent": 0, "answered": 0, "expired": 0}
              for month in period.months}
    for sent_at, status in db.execute(select(CheckIn.sent_at, CheckIn.status).where(
            CheckIn.clinic_id == clinic.id, CheckIn.test.is_(False),
            CheckIn.sent_at >= period.start, CheckIn.sent_at < period.end)):
        row = counts[period.month_of(sent_at)]
        row["sent"] += 1
        if status in ("answered", "expired"):
            row[status] += 1
    return list(counts.values())


def _answers(db, clinic: Clinic, period: Period):
    """The period's answers (tests left out) with their visit, oldest first."""
    return db.execute(select(Response, Appointment).join(
        CheckIn, CheckIn.id == Response.check_in_id).join(
        Appointment, Appointment.id == CheckIn.appointment_id).where(
        Response.clinic_id == clinic.id, CheckIn.test.is_(False),
        Response.submitted_at >= period.start, Response.submitted_at < period.end)
        .order_by(Response.submitted_at, Response.id)).all()


def band_of(response: Response) -> dict:
    """The answer's band, named as its instrument names it (the note says something else
    when every answer was at the top; the band is the same)."""
    band = ((response.result or {}).get("summary") or {}).get("scores", {}).get("band")
    if not band:
        return NO_BAND
    return {"id": band["id"], "label": _band_label(response.instrument_id, band["id"])
            or band.get("label") or band["id"]}


def _band_label(instrument_id: str, band_id: str) -> str | None:
    found = instruments.registry()
    if instrument_id not in found:
        return None
    bands = found.get(instrument_id).bands
    for band in bands.ranges if bands else ():
        if band.id == band_id:
            return pick(band.label, "en")
    return None


def alliance(db, clinic: Clinic, period: Period) -> dict:
    """Per month: answers, median overall score, and answers per band; the bands in
    order from the lowest, as the instruments name them."""
    scores: dict[str, list[float]] = defaultdict(list)
    bands: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    labels: dict[str, str] = {}
    floor: dict[str, float] = {}
    for response, _ in _answers(db, clinic, period):
        month = period.month_of(response.submitted_at)
        band = band_of(response)
        labels[band["id"]] = band["label"]
        bands[month][band["id"]] += 1
        if response.overall is not None:
            scores[month].append(response.overall)
            floor[band["id"]] = min(floor.get(band["id"], 101.0), response.overall)
    order = sorted(labels, key=lambda band: floor.get(band, 101.0))
    return {"bands": [{"id": band, "label": labels[band]} for band in order],
            "months": [{"month": month, "answers": sum(bands[month].values()),
                        "median": round(statistics.median(scores[month]), 1)
                        if scores[month] else None,
                        "bands": {band: bands[month].get(band, 0) for band in order}}
                       for month in period.months]}


def by_therapist(db, clinic: Clinic, period: Period) -> list[dict]:
    found: dict[str, dict] = {}
    for response, appointment in _answers(db, clinic, period):
        therapist = response.therapist_id or "unknown"
        row = found.setdefault(therapist, {"therapist_id": therapist, "name": None,
                                           "scores": []})
        row["name"] = appointment.therapist_name or row["name"]
        if response.overall is not None:
            row["scores"].append(response.overall)
    rows = []
    for row in sorted(found.values(), key=lambda r: (r["name"] or r["therapist_id"]).lower()):
        enough = len(row["scores"]) >= MINIMUM_ANSWERS
        rows.append({"therapist_id": row["therapist_id"], "name": row["name"],
                     "answers": len(row["scores"]), "enough": enough,
                     "median": round(statistics.median(row["scores"]), 1) if enough else None})
    return rows


def open_flags(db, clinic: Clinic, period: Period) -> list[dict]:
    """Each client's latest answer in the period, where it drops or is low."""
    latest: dict[str, tuple[Response, Appointment]] = {}
    for response, appointment in _answers(db, clinic, period):
        latest[response.client_external_id] = (response, appointment)
    names = _first_names(db, clinic, list(latest))
    flagged = []
    for client_id, (response, appointment) in latest.items():
        summary = (response.result or {}).get("summary") or {}
        flags = [flag for flag in summary.get("flags", []) if flag.get("code") in ALERTING]
        low = bool(((response.result or {}).get("history") or {}).get("low"))
        if not flags and not low:
            continue
        flagged.append({"client_id": client_id, "first_name": names.get(client_id),
                        "therapist": appointment.therapist_name or response.therapist_id,
                        "answered_at": response.submitted_at, "overall": response.overall,
                        "band": band_of(response)["label"],
                        "codes": [flag["code"] for flag in flags],
                        "flags": [flag.get("message") or flag["code"] for flag in flags]
                        or ["Low score"]})
    return sorted(flagged, key=lambda row: row["answered_at"], reverse=True)


def _first_names(db, clinic: Clinic, client_ids: list[str]) -> dict[str, str]:
    """First names Rapport still holds (only while a check-in is open: it keeps no name
    once one is answered or closed)."""
    if not client_ids:
        return {}
    return {client_id: name for client_id, name in db.execute(
        select(CheckIn.client_external_id, CheckIn.first_name).where(
            CheckIn.clinic_id == clinic.id, CheckIn.client_external_id.in_(client_ids),
            CheckIn.first_name.is_not(None), CheckIn.test.is_(False)))}


def retention(db, clinic: Clinic, period: Period, now: datetime | None = None) -> dict:
    """Rebooking within each horizon, by the band of the client's last answered
    check-in in the period: per band, per horizon, how many clients can be judged yet
    and how many booked again."""
    now = now or datetime.now(timezone.utc)
    last: dict[str, tuple[Response, Appointment]] = {}
    for response, appointment in _answers(db, clinic, period):
        visit = appointment.end_at or appointment.start_at or response.submitted_at
        held = last.get(response.client_external_id)
        if held is None or visit >= (held[1].end_at or held[1].start_at or held[0].submitted_at):
            last[response.client_external_id] = (response, appointment)
    later = _later_bookings(db, clinic, list(last))
    rows: dict[str, dict] = {}
    order: dict[str, float] = {}
    for client_id, (response, appointment) in last.items():
        band = band_of(response)
        visit = appointment.end_at or appointment.start_at or response.submitted_at
        row = rows.setdefault(band["id"], {"band": band["id"], "label": band["label"],
                                           "clients": 0,
                                           "horizons": {days: {"known": 0, "rebooked": 0}
                                                        for days in HORIZONS}})
        row["clients"] += 1
        if response.overall is not None:
            order[band["id"]] = min(order.get(band["id"], 101.0), response.overall)
        for days in HORIZONS:
            if visit + timedelta(days=days) > now:
                continue  # too soon to tell
            cell = row["horizons"][days]
            cell["known"] += 1
            if any(visit < start <= visit + timedelta(days=days)
                   for start in later.get(client_id, ())):
                cell["rebooked"] += 1
    for row in rows.values():
        for cell in row["horizons"].values():
            cell["share"] = round(100 * cell["rebooked"] / cell["known"]) if cell["known"] else None
    return {"horizons": list(HORIZONS),
            "bands": sorted(rows.values(), key=lambda row: order.get(row["band"], 101.0))}


def _later_bookings(db, clinic: Clinic, client_ids: list[str]) -> dict[str, list[datetime]]:
    found: dict[str, list[datetime]] = defaultdict(list)
    if not client_ids:
        return found
    for client_id, start in db.execute(select(
            Appointment.client_external_id, Appointment.start_at).where(
            Appointment.clinic_id == clinic.id, Appointment.client_external_id.in_(client_ids),
            Appointment.status != "cancelled", Appointment.start_at.is_not(None))):
        found[client_id].append(start)
    return found
