"""What Rapport stores in its inbox for Cliniko, which sends nothing: one delivery per
appointment :mod:`~handlers.cliniko.polling` read, its delivery id, and the delivery read
as an :class:`AppointmentEvent`.

A delivery is the appointment's JSON exactly as Cliniko listed it, with three headers of
Rapport's own, set by the poll that read it:

- ``x-rapport-fetched-at``: when it was read, so the status is the one it had then, not
  the one it has when the delivery is processed (a visit read while it was on is
  ``booked``, whenever that delivery is parsed);
- ``x-rapport-grace-minutes``: how long after its end a visit still standing is taken as
  completed (room for the front desk to mark "did not arrive");
- ``x-rapport-since``: the moment the clinic was connected: a visit that ended before it
  is never acted upon.

Its delivery id is ``cliniko:<appointment id>:<updated_at>:<status>``: the same version of
the appointment read twice in the same state is stored once, while the same version read
again once it has ended (``booked``, then ``completed``, with no change in Cliniko) is a
new delivery. A body that cannot be read gets a digest instead, so it is stored, and
:func:`parse` names the field that is wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from handlers.base import (
    COMPLETED,
    MAX_MINUTES,
    AppointmentEvent,
    IgnoredEvent,
    InboundRequest,
    PayloadError,
    json_document,
    parse_instant,
)
from handlers.cliniko.appointments import RECORD, completed_at, event, load, stamp, status_of

FETCHED_AT = "x-rapport-fetched-at"
GRACE_MINUTES = "x-rapport-grace-minutes"
SINCE = "x-rapport-since"
# Rapport's completion horizon (plugin.sweeper.CHECK_HORIZON): a visit first seen ended
# longer ago than this gets no check-in ("thank you for your visit" out of the blue).
RECENT = timedelta(days=2)
IGNORED = "ignored"


def delivery(record: Mapping[str, Any], *, fetched_at: datetime, since: datetime | None,
             grace: timedelta) -> InboundRequest:
    """The delivery for one appointment as read at ``fetched_at`` (poll, and tests)."""
    headers = {
        "content-type": "application/json",
        FETCHED_AT: stamp(fetched_at),
        GRACE_MINUTES: str(int(grace.total_seconds() // 60)),
    }
    if since is not None:
        headers[SINCE] = stamp(since)
    body = json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return InboundRequest(body=body, headers=headers)


def delivery_id(request: InboundRequest) -> str:
    try:
        record, status, _occurred = _judge(request)
    except PayloadError:
        return "cliniko:body:" + hashlib.sha256(request.body).hexdigest()[:40]
    return f"cliniko:{record['id']}:{stamp(record['updated_at'])}:{status}"


def parse(request: InboundRequest) -> list[AppointmentEvent]:
    record, status, occurred = _judge(request)
    if status == IGNORED:
        raise IgnoredEvent(RECORD, record["_ignored"])
    return [event(record, status=status, occurred_at=occurred,
                  event_id=f"cliniko:{record['id']}:{stamp(record['updated_at'])}:{status}")]


def _judge(request: InboundRequest) -> tuple[dict[str, Any], str, datetime | None]:
    """The appointment, its status (or ``ignored``, the reason in ``record["_ignored"]``)
    and when that status came about."""
    fetched_at = _time_header(request, FETCHED_AT, required=True)
    since = _time_header(request, SINCE, required=False)
    grace = _grace(request)
    record = load(json_document(request.body))
    reason = None
    status = status_of(record, fetched_at, grace)
    if not record["patient_id"]:
        reason = "the appointment has no patient"
    elif since is not None and record["ends_at"] < since:
        reason = "it ended before Rapport was connected to the clinic"
    elif status == COMPLETED and fetched_at > record["ends_at"] + grace + RECENT:
        reason = ("Rapport read it more than two days after it ended: too long past for a "
                  "check-in")
    if reason:
        record["_ignored"] = reason
        return record, IGNORED, None
    occurred = completed_at(record, grace) if status == COMPLETED else record["updated_at"]
    return record, status, occurred


def _time_header(request: InboundRequest, name: str, *, required: bool) -> datetime | None:
    value = request.header(name)
    if value is None and not required:
        return None
    when = parse_instant(value) if value else None
    if when is None:
        raise PayloadError(name, "missing or not a time" if required else "not a time")
    return when


def _grace(request: InboundRequest) -> timedelta:
    value = request.header(GRACE_MINUTES)
    if value is None:
        return timedelta(0)
    if not value.strip().isdigit() or int(value) > MAX_MINUTES:
        raise PayloadError(GRACE_MINUTES, f"not a whole number of minutes up to {MAX_MINUTES}")
    return timedelta(minutes=int(value))
