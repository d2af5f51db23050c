"""Polling: platforms that send no webhooks (``Completion.POLLING``) are asked what
changed, and what they answer is stored in the inbox as if it had been delivered.

Each connected clinic on such a platform is polled every ``POLL_INTERVAL_SECONDS`` (300
by default): :func:`poll_due`, run every minute (``plugin/tasks/schedule.py``), queues
the clinics that are due, and :func:`poll_clinic` polls one. A poll hands the platform
the cursor its last poll returned and ``since`` — the clinic's connection, less
``POLL_HORIZON_HOURS`` (0 by default) — so that a visit which ended before it never gets
a check-in. The deliveries it read are stored in the inbox, deduplicated exactly as
webhooks are, in the same transaction as the new cursor, and ``ingest_events`` takes
them from there. A poll cut short (a worker killed midway) leaves the cursor where the
last stored poll put it; the next one reads from there again, and what it reads twice is
stored once.

The pace is the platform's declaration: while more is waiting (``PollPage.more``) the
next poll follows ``calls × 60 / poll_requests_per_minute`` seconds later. A platform out
of reach is asked again after its ``Retry-After`` (or a backoff, at most the interval);
credentials it refuses make the clinic "needs reconnecting", and it is not polled until
it reconnects; any other refusal keeps the cursor, is shown by ``rapport clinic list``,
and the next round tries again. One clinic is polled by one worker at a time: a poll
claims the clinic's :class:`PollState`, and a claim older than a job may run is a poll
that was killed.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from handlers.base import (
    RECONNECT_ERRORS,
    AdapterError,
    Completion,
    ConflictError,
    IgnoredEvent,
    PayloadError,
    Platform,
    PollPage,
    TransientError,
)
from plugin.clinics.platforms import (
    credentials_for,
    names_where,
    platform_of,
    platform_refused,
    refusal_detail,
)
from plugin.pipeline.ingest import queue_ingest
from plugin.store import database
from plugin.store.models import Clinic, PollState
from plugin.tasks.queue import JOB_TIMEOUT, at_tag, backoff_seconds, enqueue
from plugin.tasks.runtime import job
from plugin.web import deliveries

log = logging.getLogger(__name__)

CLAIM_SECONDS = JOB_TIMEOUT  # RQ stops a job by then: an older claim is a killed poll
INGEST_BATCH = 50  # stored deliveries per ingest job


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def polled(capabilities) -> bool:
    return capabilities.completion is Completion.POLLING


@dataclass
class Outcome:
    """What one poll of a clinic did, for the job's log and ``rapport clinic poll``."""

    clinic_id: int
    at: datetime
    skipped: str | None = None  # why no poll was made
    calls: int = 0
    read: int = 0  # deliveries the platform returned
    stored: int = 0  # of which new to the inbox
    statuses: Counter = field(default_factory=Counter)  # events read, by status
    ignored: Counter = field(default_factory=Counter)  # deliveries left, by reason
    more: bool = False
    next_poll_at: datetime | None = None
    problem: str | None = None


@job
def poll_clinic(clinic_id: int, now: datetime | None = None):
    """Poll the clinic if it is due, and queue the next poll when the platform said more
    is waiting or asked to be asked again later (the regular rounds are ``poll_due``'s)."""
    outcome = poll(clinic_id, now=now)
    follow_up(outcome)
    return None


def queue_poll(clinic_id: int, at: datetime | None = None) -> bool:
    """Queue the clinic's poll for ``at`` (now when None), named after that moment: found
    due again before it ran, it is not queued twice; once it has run, it may be."""
    at = at or utcnow()
    return enqueue(poll_clinic, clinic_id, id_parts=(clinic_id, at_tag(at)), at=at,
                   requeue_finished=True)


def follow_up(outcome: Outcome) -> None:
    """Queue the clinic's next poll when it comes before the next regular round."""
    if outcome.skipped or outcome.next_poll_at is None:
        return
    regular = outcome.at + timedelta(seconds=current_app.config["POLL_INTERVAL_SECONDS"])
    if outcome.next_poll_at < regular:
        queue_poll(outcome.clinic_id, outcome.next_poll_at)


@job
def poll_due(now: datetime | None = None) -> int:
    """Queue a poll of every connected clinic on a polled platform that is due (a clinic
    never polled is due at once); how many."""
    moment = now or utcnow()
    with database.session() as db:
        due = db.execute(select(Clinic.id, PollState.next_poll_at)
                         .outerjoin(PollState, PollState.clinic_id == Clinic.id).where(
            Clinic.platform.in_(names_where(polled)), Clinic.status == "active",
            or_(PollState.next_poll_at.is_(None), PollState.next_poll_at <= moment))).all()
    for clinic_id, at in due:
        queue_poll(clinic_id, at or moment)
    return len(due)


def poll(clinic_id: int, *, now: datetime | None = None, force: bool = False) -> Outcome:
    """Poll the clinic once, as seen at ``now`` (the platform's time; the current time
    when None): store what its platform read, save the cursor, queue the ingestion.
    ``force``: even before it is due (``rapport clinic poll``)."""
    moment = now or utcnow()
    outcome = Outcome(clinic_id=clinic_id, at=moment)
    claimed = _claim(clinic_id, moment, force, outcome)
    if claimed is None:
        return outcome
    clinic, state = claimed
    try:
        _poll_claimed(outcome, clinic, state)
    except BaseException:
        # Not the platform's answer (the database, a bug): the cursor stays where it was,
        # and the next round polls again.
        _release(clinic_id, state.claimed_at)
        raise
    if outcome.problem:
        log.warning("poll.failed: clinic %s: %s", clinic_id, outcome.problem)
    else:
        log.info("poll.done: clinic %s: %s calls, %s read, %s new%s", clinic_id,
                 outcome.calls, outcome.read, outcome.stored,
                 ", more waiting" if outcome.more else "")
    return outcome


@dataclass(frozen=True)
class _Claim:
    claimed_at: datetime
    cursor: str | None
    since: datetime
    failures: int


def _claim(clinic_id: int, moment: datetime, force: bool,
           outcome: Outcome) -> tuple[Clinic, _Claim] | None:
    """The clinic and its poll state, claimed for this poll; None (the reason in
    ``outcome.skipped``) when it is not to be polled now."""
    claimed_at = utcnow()
    with database.session() as db:
        clinic = db.get(Clinic, clinic_id)
        if clinic is None:
            outcome.skipped = "no such clinic"
            return None
        platform = platform_of(clinic)
        if not polled(platform.capabilities):
            outcome.skipped = f"{platform.title} sends its events to Rapport: nothing to poll"
            return None
        if clinic.status != "active":
            outcome.skipped = "the clinic is not connected: " + (
                clinic.status_detail or clinic.status.replace("_", " "))
            return None
        _ensure_state(db, clinic)
        conditions = [PollState.clinic_id == clinic_id,
                      or_(PollState.claimed_at.is_(None),
                          PollState.claimed_at <= claimed_at - timedelta(seconds=CLAIM_SECONDS))]
        if not force:
            conditions.append(or_(PollState.next_poll_at.is_(None),
                                  PollState.next_poll_at <= moment))
        taken = db.execute(update(PollState).where(*conditions)
                           .values(claimed_at=claimed_at)).rowcount
        state = db.get(PollState, clinic_id, populate_existing=True)
        if not taken:
            outcome.next_poll_at = state.next_poll_at
            outcome.skipped = ("another poll of this clinic is under way"
                               if state.claimed_at and state.claimed_at != claimed_at
                               else "not due yet")
            return None
        return clinic, _Claim(claimed_at, state.cursor, state.since, state.failures or 0)


def _poll_claimed(outcome: Outcome, clinic: Clinic, state: _Claim) -> None:
    platform, moment = platform_of(clinic), outcome.at
    try:
        page = platform.poll(credentials_for(clinic), state.cursor, since=state.since,
                             now=moment)
    except RECONNECT_ERRORS as error:
        platform_refused(clinic.id, error)
        _failed(outcome, state, refusal_detail(error), next_poll_at=moment)
    except (TransientError, ConflictError) as error:
        delay = backoff_seconds(state.failures + 1, getattr(error, "retry_after", None),
                                base=current_app.config["JOB_RETRY_INTERVALS"][0],
                                cap=current_app.config["POLL_INTERVAL_SECONDS"])
        _failed(outcome, state, f"{platform.title} did not answer: {error}",
                next_poll_at=_whole_second(moment + timedelta(seconds=delay)))
    except AdapterError as error:
        _failed(outcome, state, f"{platform.title} refused the poll: {error}",
                next_poll_at=_regular(moment))
    else:
        _stored(outcome, state, platform, page)


def _ensure_state(db, clinic: Clinic) -> None:
    """The clinic's poll state, made at its first poll: visits count from its connection,
    less the installation's horizon."""
    horizon = timedelta(hours=current_app.config["POLL_HORIZON_HOURS"])
    insert = postgresql.insert if db.bind.dialect.name == "postgresql" else sqlite.insert
    db.execute(insert(PollState).values(clinic_id=clinic.id, since=clinic.created_at - horizon,
                                        failures=0)
               .on_conflict_do_nothing(index_elements=["clinic_id"]))


def _stored(outcome: Outcome, state: _Claim, platform: Platform, page: PollPage) -> None:
    """Keep what the poll read, and the cursor it reached, in one transaction; then queue
    the ingestion of what was new."""
    entries, unreadable = [], []
    for inbound in page.deliveries:
        try:
            read = deliveries.entry(platform, inbound)
        except IgnoredEvent as error:
            outcome.ignored[error.reason or f"{error.event_type} is not acted on"] += 1
            continue
        except PayloadError as error:
            # As a webhook's malformed body is refused with 400: nothing to act on.
            unreadable.append(str(error))
            continue
        entries.append(read)
        outcome.statuses.update(event["status"] for event in read.events)
    outcome.calls, outcome.read, outcome.more = page.calls, len(page.deliveries), page.more
    outcome.next_poll_at = _paced(platform, page, outcome.at)
    if unreadable:
        outcome.problem = (f"{len(unreadable)} of what {platform.title} listed could not be "
                           f"read, and was left: {unreadable[0]}")
    with database.session() as db:
        stored = deliveries.store_now(db, outcome.clinic_id, entries)
        row = db.get(PollState, outcome.clinic_id, with_for_update=True,
                     populate_existing=True)
        if row.claimed_at != state.claimed_at:
            # This poll outlived its claim and another took over: what was read is kept
            # (stored once), the cursor is the other poll's to move.
            log.warning("poll.claim-lost: clinic %s", outcome.clinic_id)
        else:
            row.cursor = page.cursor if page.cursor is not None else row.cursor
            row.last_polled_at, row.next_poll_at = outcome.at, outcome.next_poll_at
            row.failures, row.claimed_at = 0, None
            row.last_problem = outcome.problem
            row.last_problem_at = outcome.at if outcome.problem else None
    outcome.stored = len(stored)
    try:
        for start in range(0, len(stored), INGEST_BATCH):
            queue_ingest(stored[start:start + INGEST_BATCH])
    except (RedisError, OSError) as error:
        log.error("poll.enqueue-failed: %d events wait for the sweeper: %s", len(stored), error)


def _failed(outcome: Outcome, state: _Claim, problem: str, *, next_poll_at: datetime) -> None:
    """The poll read nothing: the cursor stays, the problem is kept for clinic list."""
    outcome.problem, outcome.next_poll_at = problem[:2000], next_poll_at
    with database.session() as db:
        db.execute(update(PollState).where(PollState.clinic_id == outcome.clinic_id,
                                           PollState.claimed_at == state.claimed_at)
                   .values(claimed_at=None, next_poll_at=next_poll_at,
                           failures=PollState.failures + 1, last_problem=outcome.problem,
                           last_problem_at=outcome.at))


def _release(clinic_id: int, claimed_at: datetime) -> None:
    with database.session() as db:
        db.execute(update(PollState).where(PollState.clinic_id == clinic_id,
                                           PollState.claimed_at == claimed_at)
                   .values(claimed_at=None))


def _paced(platform: Platform, page: PollPage, moment: datetime) -> datetime:
    """When to poll next: at the platform's declared pace while more is waiting (never in
    the same second, which would give the next poll this one's name), else a round later."""
    if not page.more:
        return _regular(moment)
    per_minute = platform.capabilities.poll_requests_per_minute
    wait = page.calls * 60 / per_minute if per_minute else 0
    return _whole_second(moment + timedelta(seconds=max(1.0, wait)))


def _regular(moment: datetime) -> datetime:
    return _whole_second(moment + timedelta(seconds=current_app.config["POLL_INTERVAL_SECONDS"]))


def _whole_second(moment: datetime) -> datetime:
    """``moment``, rounded up to the second: RQ schedules to the second, and a poll it ran
    in the second before its time would find itself not due yet."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)
