"""Events read in the order they were told, though two workers apply them.

A visit's completion can be applied while events its clinic's platform sent before it
still wait in the inbox: another worker holds them, or retries them after a conflict.
Were the check-in sent at once (a clinic whose rules send at once), a cancellation told
just before the completion would be read after the email went. So the email waits for
those earlier events, looking again every :data:`LOOK_AGAIN`, and for at most
:data:`WAIT` after the check-in was planned: an event that keeps failing does not hold a
clinic's emails for longer than that.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select

from plugin.store import database
from plugin.store.models import CheckIn, InboxEvent

WAIT = timedelta(seconds=60)
LOOK_AGAIN = timedelta(seconds=2)


def still_waiting(check_in: CheckIn, inbox_id: int | None, moment: datetime) -> bool:
    """Whether events the check-in's clinic received before inbox event ``inbox_id`` (the
    one that completed its visit; None: not known) are not applied yet, within
    :data:`WAIT` of the check-in's planning."""
    if inbox_id is None or moment - check_in.created_at > WAIT:
        return False
    with database.reading() as db:
        return bool(db.scalar(select(exists().where(
            InboxEvent.clinic_id == check_in.clinic_id, InboxEvent.id < inbox_id,
            InboxEvent.processed_at.is_(None)))))
