"""The fault matrix's scenarios: completed visits sent to Rapport while something goes
wrong, then the clients answer, and what came out is counted.

Each scenario delivers ``visits`` completed visits of a new clinic through gunicorn (a
platform's way: retried until acknowledged), answers every check-in that arrives, and
waits for the write-backs. A fault runs meanwhile. Counted from outside: visits
acknowledged; emails, duplicate emails (a second email to one visit's client) and lost
visits (acknowledged, no email); callbacks accepted, duplicate callbacks (a second note for
one appointment: a second webhook id), same-id repeats (a retry of a callback whose
answer Rapport never saw, which the receiver drops by its id) and lost notes (a visit
that should have been emailed and has no note, whether or not its client could answer).

``strength`` scales the faults: 1 for the CI-sized run, 10 for ``bench/faults.py``'s
(SMTP down for a minute, storms and locks ten times as long).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from tests.support.fault_kinds import (
    CallbackStorm,
    DatabaseLocked,
    DatabaseRestarted,
    Fault,
    RedisRestarted,
    SmtpDown,
    WorkerKilled,
)
from tests.support.fault_stack import Stack

LINGER_SECONDS = 3  # after the last note, for anything sent twice to show (a sweep)


@dataclass
class Row:
    scenario: str
    database: str
    visits: int
    expected: int = 0  # the visits that should be emailed (a cancelled one is not)
    acked: int = 0
    emails: int = 0
    duplicate_emails: int = 0
    lost: int = 0
    unexpected: int = 0
    answered: int = 0
    callbacks: int = 0
    duplicate_callbacks: int = 0
    repeated_callbacks: int = 0
    lost_notes: int = 0
    seconds: float = 0.0
    fault: str = ""

    HEADER = ("scenario", "db", "acked", "emails", "dup emails", "lost", "callbacks",
              "dup callbacks", "same-id repeats", "lost notes", "s", "fault")

    def cells(self) -> tuple:
        return (self.scenario, self.database, self.acked, self.emails, self.duplicate_emails,
                self.lost + self.unexpected, self.callbacks, self.duplicate_callbacks,
                self.repeated_callbacks, self.lost_notes, f"{self.seconds:.0f}", self.fault)

    @property
    def clean(self) -> bool:
        return not (self.duplicate_emails or self.lost or self.unexpected
                    or self.duplicate_callbacks or self.lost_notes) and self.acked == self.visits


def table(rows: list[Row]) -> str:
    lines = [Row.HEADER, *(row.cells() for row in rows)]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(Row.HEADER))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths,
                                                                              strict=True))
                     for line in lines)


@dataclass
class Visits:
    """One scenario's visits: visit ``i`` is client ``<prefix>-<i>@example.com``."""

    prefix: str
    count: int
    expected: set[int] = field(default_factory=set)  # the visits that should be emailed

    def address(self, index: int) -> str:
        return f"{self.prefix}-{index}@example.com"

    def appointment(self, index: int) -> str:
        return f"{self.prefix}-A-{index}"

    def body(self, index: int, event_type: str = "appointment.completed",
             occurred: datetime | None = None) -> bytes:
        end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
        return json.dumps({
            "type": event_type,
            "timestamp": (occurred or datetime.now(timezone.utc)).isoformat(),
            "data": {"appointment": {"id": self.appointment(index),
                                     "start": (end - timedelta(hours=1)).isoformat(),
                                     "end": end.isoformat()},
                     "client": {"id": f"{self.prefix}-C-{index}",
                                "email": self.address(index), "first_name": "Sam",
                                "locale": "en"},
                     "therapist": {"id": "T-1", "name": "Dana"}}}).encode()


# --- how the visits are delivered ------------------------------------------------------

def once_each(stack: Stack, clinic: dict, visits: Visits) -> int:
    """Each completed visit once, eight at a time; how many were acknowledged."""
    visits.expected = set(range(visits.count))
    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(lambda i: stack.deliver(clinic, visits.body(i),
                                                    f"msg_{visits.prefix}_{i}"),
                            range(visits.count)))


def five_times_and_resent(stack: Stack, clinic: dict, visits: Visits) -> int:
    """Each visit five times at once under one id, then the same content under a new id
    (a platform that lost track of what it sent)."""
    visits.expected = set(range(visits.count))

    def deliver(index: int) -> bool:
        body, msg_id = visits.body(index), f"msg_{visits.prefix}_{index}"
        with ThreadPoolExecutor(5) as pool:
            acked = any(pool.map(lambda _: stack.deliver(clinic, body, msg_id), range(5)))
        return stack.deliver(clinic, body, f"{msg_id}_again") and acked

    with ThreadPoolExecutor(4) as pool:
        return sum(pool.map(deliver, range(visits.count)))


def out_of_order(stack: Stack, clinic: dict, visits: Visits) -> int:
    """Events arriving in the wrong order: a visit's completion, then its older booking;
    every third visit's cancellation before its (older) completion, so no email."""
    now = datetime.now(timezone.utc)
    visits.expected = {i for i in range(visits.count) if i % 3}

    def deliver(index: int) -> bool:
        events = [("appointment.completed", now), ("appointment.booked", now - timedelta(hours=2))]
        if index % 3 == 0:
            events = [("appointment.cancelled", now + timedelta(seconds=1)), events[0]]
        return all(stack.deliver(clinic, visits.body(index, kind, at),
                                 f"msg_{visits.prefix}_{index}_{kind}")
                   for kind, at in events)

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(deliver, range(visits.count)))


@dataclass(frozen=True)
class Scenario:
    name: str
    deliver: Callable[[Stack, dict, Visits], int]
    fault: type[Fault] = Fault
    postgres_only: bool = False


SCENARIOS = [
    Scenario("calm", once_each),
    Scenario("duplicates", five_times_and_resent),
    Scenario("out-of-order", out_of_order),
    Scenario("worker-killed", once_each, WorkerKilled),
    Scenario("redis-restarted", once_each, RedisRestarted),
    Scenario("smtp-down", once_each, SmtpDown),
    Scenario("callback-storm", once_each, CallbackStorm),
    Scenario("database-locked", once_each, DatabaseLocked),
    Scenario("database-restarted", once_each, DatabaseRestarted, postgres_only=True),
]


def run(stack: Stack, scenario: Scenario, visits: int, strength: int = 1,
        timeout: float = 240) -> Row:
    started = time.monotonic()
    deadline = started + timeout
    plan = Visits(f"{scenario.name}-{uuid.uuid4().hex[:6]}", visits)
    clinic = stack.add_clinic(plan.prefix)
    row = Row(scenario.name, stack.database_kind, visits)
    fault = scenario.fault(strength)
    try:
        fault.before(stack)
        row.acked = scenario.deliver(stack, clinic, plan)
        fault.delivered(stack)
        answered = _answer_as_they_come(stack, plan, deadline)
        fault.answered(stack)
        _wait_for_notes(stack, plan, answered, deadline)
    finally:
        row.fault = fault.end(stack)
    _wait_for_notes(stack, plan, answered, deadline)
    time.sleep(LINGER_SECONDS)
    _count(stack, plan, answered, row)
    row.seconds = time.monotonic() - started
    return row


def _answer_as_they_come(stack: Stack, plan: Visits, deadline: float) -> set[str]:
    addresses = {plan.address(i) for i in plan.expected}
    answered: set[str] = set()
    while answered != addresses and time.monotonic() < deadline:
        for address, token in stack.tokens(plan.prefix).items():
            if address in addresses and address not in answered and stack.answer(token):
                answered.add(address)
        time.sleep(0.2)
    return answered


def _wait_for_notes(stack: Stack, plan: Visits, answered: set[str], deadline: float) -> None:
    wanted = {plan.appointment(i) for i in plan.expected if plan.address(i) in answered}
    while not wanted <= set(stack.notes(plan.prefix)) and time.monotonic() < deadline:
        time.sleep(0.2)


def _count(stack: Stack, plan: Visits, answered: set[str], row: Row) -> None:
    emails = stack.emails(plan.prefix)
    expected = {plan.address(i) for i in plan.expected}
    row.expected = len(expected)
    row.emails = sum(emails.values())
    row.duplicate_emails = sum(count - 1 for count in emails.values() if count > 1)
    row.lost = len(expected - set(emails))
    row.unexpected = len(set(emails) - expected)
    row.answered = len(answered)
    notes = stack.notes(plan.prefix)
    row.callbacks = sum(len(ids) for ids in notes.values())
    # A receiver keeps one note per webhook id (the same on every retry: README,
    # "Callback"); a second id for one appointment would be a second note.
    row.duplicate_callbacks = sum(len(set(ids)) - 1 for ids in notes.values())
    row.repeated_callbacks = row.callbacks - sum(len(set(ids)) for ids in notes.values())
    row.lost_notes = sum(1 for i in plan.expected if plan.appointment(i) not in notes)
