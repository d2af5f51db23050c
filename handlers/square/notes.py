"""Writing back to Square: Rapport's block in the customer note, the summary custom
attribute, and Rapport's block in the next booking's seller note.

Square facts this module relies on, and where they are documented:

- ``version`` gives optimistic concurrency on customers and bookings; a stale version is
  answered with a "version mismatch" error and the object must be read again.
  https://developer.squareup.com/docs/working-with-apis/optimistic-concurrency,
  https://developer.squareup.com/reference/square/customers-api/update-customer
- UpdateBooking at seller level needs APPOINTMENTS_WRITE and APPOINTMENTS_ALL_WRITE and a
  seller on Appointments Plus or Premium; ``Booking.seller_note`` is at most 4096 characters
  and hidden from customers (spec, UpdateBooking and Booking).

Not confirmed, and handled defensively:

- The longest ``Customer.note`` (the spec states no limit) and the longest String custom
  attribute value (Rapport keeps the summary under 255 characters).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from handlers.base import (
    ConflictError,
    Note,
    WriteBackResult,
    WriteBackTarget,
    replace_block,
)
from handlers.square.api import _call, _customer, _key, _NotFound, _segment
from handlers.square.install import ATTRIBUTE_KEY, ensure_attribute_definition

SELLER_NOTE_LIMIT = 4096
ATTRIBUTE_VALUE_LIMIT = 255
CONFLICT_ATTEMPTS = 4
# Bookings that can still carry talking points for the visit ahead.
ACTIVE_STATUSES = frozenset({"PENDING", "ACCEPTED"})


def write_back(
    credentials: Mapping[str, Any],
    target: WriteBackTarget,
    note: Note,
    *,
    delivery_id: str | None = None,
    occurred_at: datetime | None = None,
) -> WriteBackResult:
    """Replace Rapport's block in the customer note, then upsert the summary attribute.

    ``delivery_id`` and ``occurred_at`` are part of the adapter contract; Square needs
    neither, its writes being idempotent by content (idempotency keys and block replace).
    """
    note_detail = _write_customer_note(credentials, target.client_id, note)
    attribute = _upsert_attribute(credentials, target, note)
    return WriteBackResult(
        target="square.customer",
        detail={
            "customer_id": target.client_id,
            **note_detail,
            "attribute_key": ATTRIBUTE_KEY,
            "attribute_value": attribute.get("value"),
            "attribute_version": attribute.get("version"),
        },
    )


def write_seller_note(credentials: Mapping[str, Any], booking_id: str, note: Note) -> bool:
    """Put Rapport's block in the booking's seller note.

    True when the booking carries the block afterwards (written now or already there);
    False when the booking is no longer active or the therapist's own seller note leaves
    too little room (their text is never shortened).
    """
    path = f"/v2/bookings/{_segment(booking_id)}"
    for _attempt in range(CONFLICT_ATTEMPTS):
        booking = _call(credentials, "GET", path).get("booking") or {}
        if booking.get("status") not in ACTIVE_STATUSES:
            return False
        existing = booking.get("seller_note") or ""
        updated = _fit_seller_note(existing, note)
        if updated is None:
            return False
        if updated == existing:
            return True
        version = booking.get("version")
        body = {
            "idempotency_key": _key("rapport-sn-", booking_id, version, updated, size=40),
            "booking": {"seller_note": updated, "version": version},
        }
        try:
            _call(credentials, "PUT", path, body=body)
        except ConflictError:
            continue
        return True
    raise ConflictError(f"booking {booking_id} kept changing; seller note not written")


def _write_customer_note(
    credentials: Mapping[str, Any], customer_id: str, note: Note
) -> dict[str, Any]:
    path = f"/v2/customers/{_segment(customer_id)}"
    for _attempt in range(CONFLICT_ATTEMPTS):
        customer = _customer(credentials, customer_id)
        existing = customer.get("note") or ""
        updated = replace_block(existing, note)
        if updated == existing:
            return {"note_updated": False, "customer_version": customer.get("version")}
        body = {"note": updated, "version": customer.get("version")}
        try:
            saved = _call(credentials, "PUT", path, body=body).get("customer") or {}
        except ConflictError:
            # The therapist (or another app) saved the profile in between: start again
            # from their version so their text survives.
            continue
        return {"note_updated": True, "customer_version": saved.get("version")}
    raise ConflictError(f"customer {customer_id} kept changing; note not written")


def _fit_seller_note(existing: str, note: Note) -> str | None:
    """``existing`` with Rapport's block in the room the therapist's text leaves.

    A block too long for that room is rendered again, shorter, by the note's own
    renderer (the comment and subscale lines go before the talking points; no word is
    cut and the markers keep their lines); when even its smallest form does not fit, None.
    """
    updated = replace_block(existing, note)
    if len(updated) <= SELLER_NOTE_LIMIT:
        return updated
    # replace_block keeps everything around the block as it is, whatever the block.
    room = SELLER_NOTE_LIMIT - (len(updated) - len(note.text))
    fitted = note.fitted(room)
    return None if fitted is None else replace_block(existing, fitted)


def attribute_value(note: Note) -> str:
    """The one-line summary stored in the custom attribute.

    ``note.summary["line"]`` is used as is; otherwise the line is built from the summary
    every write-back carries (``scores.overall`` on the 0–100 scale, ``trend.sparkline``)
    and the talking points.
    """
    line = note.summary.get("line")
    if not (isinstance(line, str) and line.strip()):
        head = "Alliance"
        overall = (note.summary.get("scores") or {}).get("overall")
        if overall is not None:
            head += f" {_number(overall)}/100"
        sparkline = (note.summary.get("trend") or {}).get("sparkline")
        if sparkline:
            head += f" {sparkline}"
        count = len(note.talking_points)
        line = f"{head} — {count} talking point{'' if count == 1 else 's'}"
    return line.strip()[:ATTRIBUTE_VALUE_LIMIT]


def _upsert_attribute(
    credentials: Mapping[str, Any], target: WriteBackTarget, note: Note
) -> dict[str, Any]:
    value = attribute_value(note)
    path = f"/v2/customers/{_segment(target.client_id)}/custom-attributes/{ATTRIBUTE_KEY}"
    # The appointment is part of the key: the same summary after a later visit is a new
    # write, while a retried job for the same visit is recognised by Square.
    body = {
        "idempotency_key": _key("rapport-ca-", target.client_id, target.appointment_id, value),
        "custom_attribute": {"value": value},
    }
    try:
        answer = _call(credentials, "POST", path, body=body)
    except _NotFound:
        # Clinics connected without the install step have no definition yet.
        ensure_attribute_definition(credentials)
        answer = _call(credentials, "POST", path, body=body)
    return answer.get("custom_attribute") or {}


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
