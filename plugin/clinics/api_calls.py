"""Counting the requests Rapport makes to each clinic's platform, per calendar month
(UTC): some platforms bill calls beyond a monthly allowance, and every platform limits
their rate. ``rapport clinic list`` shows this month's count.

Adapters make every call through the session the seam puts in a clinic's credentials
(``credentials["http"]``, see ``handlers.base.http``): :func:`session_for`. It counts
each answer the platform gave, refusals and redirects included; a request that got no
answer (a timeout, a refused connection) is not counted. Each count is one small upsert
of its own, made once the calling thread has no transaction open
(``database.outside_transactions``). Calls made while a clinic is being connected, before
it exists, are not counted.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from plugin.store import database
from plugin.store.models import ApiCalls

log = logging.getLogger(__name__)

# Sessions kept per thread (their connections are reused from call to call).
KEPT_SESSIONS = 32
_kept = threading.local()


def month_of(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m")


def session_for(clinic_id: int) -> requests.Session:
    """The HTTP session the calls for ``clinic_id`` go through, counting each one in the
    current application's database; one per thread, process, database and clinic."""
    engine = database.engine()
    sessions: OrderedDict[tuple, requests.Session] = _kept.__dict__.setdefault(
        "sessions", OrderedDict())
    key = (os.getpid(), str(engine.url), clinic_id)
    session = sessions.get(key)
    if session is not None:
        sessions.move_to_end(key)
        return session
    session = requests.Session()
    session.hooks["response"].append(_counter(engine, clinic_id))
    sessions[key] = session
    while len(sessions) > KEPT_SESSIONS:
        sessions.popitem(last=False)[1].close()
    return session


def _counter(engine: Engine, clinic_id: int) -> Callable[..., None]:
    def count(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        month = month_of(datetime.now(timezone.utc))
        database.outside_transactions(lambda: add(engine, clinic_id, month, 1))

    return count


def add(engine: Engine, clinic_id: int, month: str, calls: int) -> None:
    """Add ``calls`` to the clinic's count for ``month``. A count that cannot be written
    (the database out of reach, the clinic just deleted) is logged, never raised: the
    call it counts has been made, and its caller must see the platform's answer."""
    insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)
    statement = insert(ApiCalls).values(clinic_id=clinic_id, month=month, calls=calls)
    statement = statement.on_conflict_do_update(
        index_elements=[ApiCalls.clinic_id, ApiCalls.month],
        set_={"calls": ApiCalls.calls + statement.excluded.calls})
    try:
        with engine.begin() as connection:
            connection.execute(statement)
    except SQLAlchemyError as error:
        log.warning("api-calls.not-counted: clinic %s: %s", clinic_id, error)


def this_month(db: Session, clinic_id: int, now: datetime | None = None) -> int:
    """How many calls Rapport made to the clinic's platform this month (UTC)."""
    month = month_of(now or datetime.now(timezone.utc))
    return db.scalar(select(ApiCalls.calls).where(
        ApiCalls.clinic_id == clinic_id, ApiCalls.month == month)) or 0
