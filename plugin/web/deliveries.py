"""A delivery as the inbox keeps it, whichever way it came: a webhook the receiver
verified, or what a poll read from a platform that sends none.

An :class:`Entry` (:func:`entry`) is the delivery id the inbox deduplicates on (per
clinic), the raw body, the headers worth keeping and the events the platform's adapter
read in it, so that no job parses a body again. The web process's writer
(:mod:`plugin.web.inbox`) stores webhooks; a job stores what it read in its own
transaction with :func:`store_now`, deduplicated by the same unique index.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from handlers.base import InboundRequest, PayloadError, Platform, event_to_dict
from plugin.store.models import InboxEvent

COLUMNS = ("clinic_id", "delivery_id", "received_at", "body", "headers", "events", "attempts")
# Headers worth keeping with the raw event; cookies and credentials never are.
DROPPED_HEADERS = {"cookie", "authorization", "proxy-authorization"}
BATCH = 200  # rows in one insert
# No booking happens outside these years: a time outside them is a malformed body, not
# something to compute a send time from.
EARLIEST_YEAR, LATEST_YEAR = 1970, 2200


@dataclass(frozen=True)
class Entry:
    """One delivery as the inbox keeps it."""

    delivery_id: str  # as deduplicated: :func:`dedupe_key`
    body: bytes
    headers: dict[str, Any]
    events: list[dict[str, Any]]  # what the adapter read (handlers.base.event_to_dict)

    def row(self, clinic_id: int, received_at: datetime) -> tuple:
        """The inbox row, in :data:`COLUMNS` order."""
        return (clinic_id, self.delivery_id, received_at, self.body, self.headers,
                self.events, 0)


def entry(platform: Platform, inbound: InboundRequest) -> Entry:
    """A delivery read by its platform's adapter (verified already, or read by Rapport's
    own call): raises ``PayloadError`` naming the field (a time outside the years any
    booking happens in included), or ``IgnoredEvent`` for one Rapport does not act on
    (handlers.base)."""
    delivery = platform.delivery_id(inbound)
    events = platform.parse(inbound)
    for event in events:
        for name in ("occurred_at", "start", "end"):
            moment = getattr(event, name)
            if moment is not None and not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
                raise PayloadError(name, f"the year {moment.year} is outside "
                                   f"{EARLIEST_YEAR}–{LATEST_YEAR}")
    return Entry(
        delivery_id=dedupe_key(delivery),
        body=inbound.body,
        headers={k: v for k, v in inbound.headers.items() if k not in DROPPED_HEADERS},
        events=[event_to_dict(event) for event in events])


def dedupe_key(delivery_id: str) -> str:
    """The delivery id as the inbox keeps it (255 characters at most): a longer one by its
    SHA-256, so two ids that differ only past the 255th character stay two events."""
    if len(delivery_id) <= 255:
        return delivery_id
    return "sha256:" + hashlib.sha256(delivery_id.encode()).hexdigest()


def store_now(db: Session, clinic_id: int, entries: list[Entry]) -> list[int]:
    """Store ``entries`` in the caller's transaction, skipping those the clinic had (the
    same unique index as the webhooks'); the new rows' ids. For jobs, which have no
    request waiting on a commit: the web process's writer is built for those.

    Several entries with one delivery id are stored once. Nothing is queued: the caller
    queues the new ids once its transaction has committed."""
    if not entries:
        return []
    insert = postgresql.insert if db.bind.dialect.name == "postgresql" else sqlite.insert
    received_at = datetime.now(timezone.utc)
    stored: list[int] = []
    for start in range(0, len(entries), BATCH):
        rows = [dict(zip(COLUMNS, item.row(clinic_id, received_at), strict=True))
                for item in entries[start:start + BATCH]]
        statement = (insert(InboxEvent).values(rows)
                     .on_conflict_do_nothing(index_elements=["clinic_id", "delivery_id"])
                     .returning(InboxEvent.id))
        stored += db.scalars(statement).all()
    return sorted(stored)
