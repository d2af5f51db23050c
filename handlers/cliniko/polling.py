"""Asking Cliniko what changed, since it has no webhooks.

Cliniko sends nothing (a long-standing request on its API repository), so Rapport polls
each clinic about every five minutes (:data:`POLL_INTERVAL`) and stores what it reads in
its inbox as if it had been delivered (:mod:`~handlers.cliniko.deliveries`).

Two things must be learnt, and an appointment that simply ends changes nothing in
Cliniko (its ``updated_at`` stays put), so two windows are read, each with its own place
in the cursor:

- **changed**: appointments whose ``updated_at`` falls in the window, cancelled and
  archived ones included (``q[]=cancelled_at:*``, ``q[]=archived_at:*``): new and moved
  bookings (``booked``: Rapport keeps them for the talking points of a client's next
  visit), cancellations, "did not arrive", and visits edited after their end;
- **ended**: appointments whose ``ends_at`` falls in the window, which closes
  ``COMPLETION_GRACE_MINUTES`` (15 by default) before now: each one still standing is read
  as ``completed`` — the visit took place — with no edit needed in Cliniko. (A ``booked``
  delivery also carries its start and end, so a Rapport that schedules a completion check
  at the end re-reads it with ``fetch_appointment`` and gets the same answer.)

Only visits that end at or after ``since`` — the moment the clinic was connected — are
ever asked for (``q[]=ends_at:>=since`` on the changed window; the ended window starts at
``since``): connecting a clinic never reaches last year's clients.

Each window is a fixed time range read in pages of 100 in ascending ``id`` order, the next
page asked for with ``q[]=id:>last`` rather than a page number (keyset paging): a record
edited while Rapport pages leaves the range (its new ``updated_at`` is later) and is read
again in the next window, and nothing shifts between pages, so nothing is skipped. The
changed window closes a minute before now (:data:`SETTLE`), leaving Cliniko's clock and
its writes in flight time to land. The cursor is JSON: the connection time, and for each
window its start, its end while it is being read, and the last id read in it.

Each call to :func:`poll` makes at most :data:`MAX_CALLS` requests and says how many
(``PollPage.calls``) and whether more is waiting (``more``). The platform declares
:data:`CALLS_PER_MINUTE` as its ``Capabilities.poll_requests_per_minute``, so the caller
keeps to at most that many Cliniko requests a minute for polling (after a page with
``more``, it waits ``calls`` seconds), well under Cliniko's 200 a minute per user, leaving
the rest for reading clients and writing notes. A quiet clinic costs two requests per
poll.

Cliniko facts this module relies on, and where they are documented (beside those of
:mod:`~handlers.cliniko.api` and :mod:`~handlers.cliniko.appointments`):

- Pages of up to 100 (``per_page``); ``links.next`` only when there is a next page;
  filters ``q[]=field:op value``, several ``q[]`` combined; date-time operators ``>=``,
  ``>``, ``<=``, ``<``, ``*``; integer ``=``, ``>``; ``sort`` takes a column name; without
  it results come in ascending ``created_at``. https://docs.api.cliniko.com/
  ("Pagination", "Filtering Results", "Ordering")
- Records updated since a time: ``q[]=updated_at:>…``. (same page, "Filtering Tips")

Not confirmed, and handled defensively:

- That ``sort=id`` is honoured (only ``appointment_start`` and ``created_at`` appear in
  the examples). A page not in ascending id order stops the poll with a permanent error
  naming it, rather than skipping appointments.
- The precision Cliniko compares ``updated_at`` at (it shows whole seconds): windows are
  whole seconds and every filter bound is sent as Cliniko writes times, so the windows
  meet exactly whatever it stores.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.base import InboundRequest, PermanentError, PollPage, TransientError, parse_instant
from handlers.cliniko.api import PER_PAGE, call
from handlers.cliniko.appointments import DIGITS, stamp
from handlers.cliniko.deliveries import delivery, delivery_id

POLL_INTERVAL = timedelta(minutes=5)
SETTLE = timedelta(seconds=60)
MAX_CALLS = 5
CALLS_PER_MINUTE = 60
DEFAULT_GRACE = timedelta(minutes=15)
PATH = "/individual_appointments"
CURSOR_VERSION = 1


@dataclass(frozen=True)
class Window:
    """A range of one time field: ``start`` inclusive (None: from the beginning), ``end``
    exclusive and fixed while the window is read (None: not opened yet), ``after`` the
    last id read in it."""

    start: datetime | None
    end: datetime | None = None
    after: str | None = None


@dataclass(frozen=True)
class Cursor:
    since: datetime
    changed: Window
    ended: Window

    @classmethod
    def first(cls, since: datetime) -> Cursor:
        return cls(since=since, changed=Window(start=None), ended=Window(start=since))


def poll(credentials: Mapping[str, Any], cursor: str | None, *, since: datetime,
         now: datetime | None = None) -> PollPage:
    """What changed after ``cursor`` (None: the first poll, for visits ending from
    ``since``; later polls go by the ``since`` their cursor holds), at most
    :data:`MAX_CALLS` requests' worth. A throttled or failing request after pages were
    read returns those pages (``more``); before any, it raises."""
    now = _second(now or datetime.now(UTC))
    state = decode(cursor) if cursor else Cursor.first(_second(since))
    grace = grace_of(credentials)
    closes = {"ended": now - grace, "changed": now - SETTLE}
    found: dict[str, InboundRequest] = {}
    calls = pages = 0
    while calls < MAX_CALLS:
        busy = [kind for kind in ("ended", "changed") if _due(getattr(state, kind), closes[kind])]
        if not busy:
            break
        for kind in busy:
            if calls >= MAX_CALLS:
                break
            window = _opened(getattr(state, kind), closes[kind])
            calls += 1
            try:
                page = call(credentials, "GET", PATH, params=_params(kind, window, state.since))
            except TransientError:
                if not pages:
                    raise
                # What was read stands; the caller comes back for the rest.
                return PollPage(deliveries=list(found.values()), cursor=encode(state),
                                more=True, calls=calls)
            items, more = _items(page)
            pages += 1
            for item in items:
                if _before(item, state.since):
                    continue
                request = delivery(item, fetched_at=now, since=state.since, grace=grace)
                found.setdefault(delivery_id(request), request)
            state = replace(state, **{kind: _advanced(window, items, more)})
    # A window opened and not read to its end; a window merely due opens at the next poll.
    more = state.changed.end is not None or state.ended.end is not None
    return PollPage(deliveries=list(found.values()), cursor=encode(state), more=more,
                    calls=calls)


def grace_of(credentials: Mapping[str, Any]) -> timedelta:
    minutes = credentials.get("completion_grace_minutes")
    return DEFAULT_GRACE if minutes is None else timedelta(minutes=int(minutes))


# --- windows -------------------------------------------------------------------------


def _due(window: Window, closes: datetime) -> bool:
    """Whether the window has something to read: opened and not finished, or ready to
    open (its start is before the moment it would close at)."""
    return window.end is not None or window.start is None or window.start < closes


def _opened(window: Window, closes: datetime) -> Window:
    return window if window.end is not None else Window(start=window.start, end=closes)


def _advanced(window: Window, items: list[dict[str, Any]], more: bool) -> Window:
    if more:
        return replace(window, after=str(items[-1]["id"]))
    # Finished: the next window starts where this one ended.
    return Window(start=window.end)


def _params(kind: str, window: Window, since: datetime) -> list[tuple[str, str]]:
    field = "updated_at" if kind == "changed" else "ends_at"
    query = []
    if window.start is not None:
        query.append(f"{field}:>={stamp(window.start)}")
    query.append(f"{field}:<{stamp(window.end)}")
    if kind == "changed":
        query += [f"ends_at:>={stamp(since)}", "cancelled_at:*", "archived_at:*"]
    if window.after is not None:
        query.append(f"id:>{window.after}")
    return [("q[]", q) for q in query] + [("sort", "id"), ("per_page", str(PER_PAGE))]


def _items(page: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The page's appointments, checked to come in ascending id order (the keyset relies
    on it), and whether another page follows."""
    items = page.get("individual_appointments")
    if not isinstance(items, list):
        raise PermanentError("Cliniko listed no individual_appointments")
    ids = []
    for item in items:
        ident = item.get("id") if isinstance(item, Mapping) else None
        if isinstance(ident, bool) or not DIGITS.match(str(ident)):
            raise PermanentError(f"Cliniko listed an appointment without a usable id: {ident!r}")
        ids.append(int(ident))
    if any(later <= earlier for earlier, later in zip(ids, ids[1:], strict=False)):
        raise PermanentError("Cliniko did not list appointments in ascending id order "
                             "(sort=id); polling stopped rather than skip any")
    links = page.get("links")
    more = bool(links.get("next")) if isinstance(links, Mapping) else len(items) >= PER_PAGE
    return items, more and bool(items)


def _before(item: Mapping[str, Any], since: datetime) -> bool:
    """An appointment ending before ``since`` (asked away already; checked again here so
    that a filter Cliniko ignored could never reach those clients)."""
    ends = parse_instant(item.get("ends_at"))
    return ends is not None and ends < since


# --- the cursor ------------------------------------------------------------------------


def encode(state: Cursor) -> str:
    def window(w: Window) -> dict[str, Any]:
        return {"start": _text(w.start), "end": _text(w.end), "after": w.after}

    return json.dumps({"v": CURSOR_VERSION, "since": _text(state.since),
                       "changed": window(state.changed), "ended": window(state.ended)},
                      sort_keys=True, separators=(",", ":"))


def decode(cursor: str) -> Cursor:
    try:
        data = json.loads(cursor)
        if data.get("v") != CURSOR_VERSION:
            raise ValueError(f"version {data.get('v')!r}")
        since = _time(data["since"])
        if since is None:
            raise ValueError("no since")
        return Cursor(since=since, changed=_window(data["changed"]),
                      ended=_window(data["ended"]))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise PermanentError(f"not a Cliniko poll cursor ({error}): {cursor[:200]!r}") from None


def _window(data: Mapping[str, Any]) -> Window:
    after = data.get("after")
    if after is not None and not DIGITS.match(str(after)):
        raise ValueError(f"after {after!r}")
    return Window(start=_time(data.get("start")), end=_time(data.get("end")),
                  after=None if after is None else str(after))


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return when.astimezone(UTC)


def _text(value: datetime | None) -> str | None:
    return None if value is None else stamp(value)


def _second(when: datetime) -> datetime:
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(microsecond=0)
