"""What a platform declares about itself: how completion is known, where notes go, how
a clinic connects and gets its webhooks (:class:`Capabilities`), the installation
settings and connect fields it needs, and the small records its calls return. See
:mod:`handlers.base` for what each declaration means to the pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from handlers.shapes import InboundRequest


class Completion(StrEnum):
    STATUS = "status"
    END_TIME = "end_time"
    POLLING = "polling"


class NotePlace(StrEnum):
    PROFILE_NOTE = "profile_note"
    PROFILE_FIELD = "profile_field"
    NEXT_BOOKING = "next_booking"
    CALLBACK = "callback"


class Connection(StrEnum):
    OAUTH = "oauth"
    API_KEY = "api_key"
    SHARED_SECRET = "shared_secret"  # noqa: S105 - a kind of connection, not a secret


class Webhooks(StrEnum):
    PER_CLINIC = "per_clinic"
    PER_APPLICATION = "per_application"


@dataclass(frozen=True)
class Capabilities:
    completion: Completion
    note_places: frozenset[NotePlace]
    connections: frozenset[Connection]
    webhooks: frozenset[Webhooks] = frozenset()
    token_refresh: bool = False
    subscription: bool = False
    note_limit: int = 2000
    business_locale: bool = False
    """The platform can say the business's time zone and language."""
    events_name_only: bool = False
    """Its events name the appointment and little else (no times, no client): Rapport
    reads the appointment (:meth:`Platform.fetch_appointment`) before acting on one."""
    requests_per_minute: int | None = None
    """The platform's documented rate limit (per account, or per IP address where the
    platform says so), which Rapport keeps well under."""
    reread_at_end: bool = False
    """For a platform that says "completed" in its events (``Completion.STATUS``) but may
    not send every such event: Rapport also reads the appointment once it has ended (plus
    the clinic's grace), and later and later while it is not completed, as for
    ``END_TIME``. :meth:`Platform.fetch_appointment` then answers ``completed`` only on the
    platform's own word, never from the clock."""
    poll_requests_per_minute: int | None = None
    """``POLLING``: the most requests one clinic's polling may make in a minute. After a
    poll that left more waiting (:attr:`PollPage.more`), Rapport polls again
    ``PollPage.calls × 60 / poll_requests_per_minute`` seconds later, rather than at the
    next round; None: a second later. Set it well under :attr:`requests_per_minute`, leaving room
    for the calls each visit makes."""
    test_event: bool = False
    """On request, the platform sends a sample event to the application's subscription
    (``PER_APPLICATION``, one Rapport made) and says how Rapport answered it
    (:meth:`Platform.send_test_event`): the console's "Send a test event"."""


@dataclass(frozen=True)
class Setting:
    """One installation setting a platform needs: ``RAPPORT_<PLATFORM>_<NAME>``.

    ``choices``: the only values allowed. ``keys``: one secret, or a JSON list of them
    while rotating (read as a list). Every platform setting is text, taken as given.
    """

    name: str
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    keys: bool = False


@dataclass(frozen=True)
class Field:
    """Something a clinic admin gives when connecting a clinic, or later (a new token):
    a ``--name-with-dashes`` option of ``rapport clinic``, a field of the console's form.
    ``flag``: a yes/no switch rather than a value. ``tried``: a new value is tried with
    the platform (:meth:`Platform.prepare_account`) before it replaces the stored one,
    and a clinic waiting to reconnect is connected again by it."""

    name: str
    help: str
    label: str = ""
    secret: bool = False
    flag: bool = False
    tried: bool = False

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Shown:
    """A value the admin copies once a clinic is added (a URL, a secret)."""

    key: str
    label: str
    value: str


@dataclass(frozen=True)
class Subscription:
    """A webhook subscription Rapport's application holds on a platform."""

    subscription_id: str | None
    signature_key: str
    notification_url: str


@dataclass(frozen=True)
class TestResult:
    """What a platform said after sending a test event to Rapport's webhook: whether
    Rapport answered with a 2xx, the HTTP status it answered (None: the platform got no
    answer at all), and a short detail (what was sent, the platform's id for the test)."""

    __test__ = False  # a result, not a test class (pytest collects names like "Test*")

    reached: bool
    status: int | None
    detail: str = ""


@dataclass(frozen=True)
class Revocation:
    """A platform telling Rapport that an account withdrew its access."""

    account_id: str
    at: datetime | None


@dataclass(frozen=True)
class BusinessLocale:
    timezone: str | None
    language: str | None
    """The language subtag alone (``fr`` for ``fr-CA``), lower case."""


@dataclass(frozen=True)
class PollPage:
    """What one poll found: deliveries to store in the inbox as if they had been sent,
    the cursor to poll from next (text, a few hundred characters at most, opaque to
    Rapport), whether more is waiting right now, and how many requests the poll made
    (the pace of the next one, :attr:`Capabilities.poll_requests_per_minute`)."""

    deliveries: Sequence[InboundRequest] = ()
    cursor: str | None = None
    more: bool = False
    calls: int = 0
