"""The contract between Rapport and a booking platform.

A platform is one object, a subclass of :class:`Platform`, that **declares** what the
platform can do (:class:`Capabilities`, the installation settings it needs, what a
clinic admin gives to connect) and **implements** the calls Rapport makes. ``plugin/``
reads the declaration and never names a platform nor asks ``hasattr``: a method is
called only when the declaration says the platform has it. Adapters stay pure: they
import this module (and ``requests``), never ``plugin``.

What each declaration means for the pipeline:

- ``completion``: how Rapport knows a visit is over. ``STATUS``: the platform says
  "completed" in an event. ``END_TIME``: it never does; at the end (plus the clinic's
  grace) Rapport re-reads the appointment with :meth:`Platform.fetch_appointment`, which
  answers ``completed`` for one still standing. ``POLLING``: no webhooks at all; a
  periodic job asks :meth:`Platform.poll` what changed and stores it in the inbox as if
  it had been delivered, so the rest of the journey is the same. The poll reports
  ``completed`` itself (it reads what ended), so no check is scheduled at the end.
- ``note_places``: where Rapport's note goes (the client's profile note or a field of
  it, the next booking's own note, or the clinic's callback URL).
- ``connections``: how a clinic connects (``OAUTH`` through the platform's sign-in,
  ``API_KEY`` given by the admin, ``SHARED_SECRET`` Rapport generates for the clinic's
  system to sign with).
- ``webhooks``: ``PER_CLINIC`` (``/webhooks/<platform>/<clinic key>``, verified with the
  clinic's own secret) and/or ``PER_APPLICATION`` (``/webhooks/<platform>``, one
  subscription for Rapport's whole application, verified with its key and routed to a
  clinic by the platform's account id, :meth:`Platform.account_id`).
- ``token_refresh``: OAuth tokens Rapport renews before they expire.
- ``subscription``: Rapport registers its webhook through the platform's API: the
  application's subscription on a platform with ``PER_APPLICATION`` webhooks
  (:meth:`Platform.subscribe_application`), otherwise each clinic's own
  (:meth:`Platform.subscribe_clinic`), as the clinic is added.
- ``note_limit``: the longest note, in characters, the write-back target takes.
- ``events_name_only``: events carry an id and an action only; Rapport reads the
  appointment before acting. ``requests_per_minute``: the documented rate limit.
- ``reread_at_end``: a ``STATUS`` platform whose "completed" event may never come; the
  appointment is also read at its end, as for ``END_TIME``.
- ``poll_requests_per_minute`` (``POLLING``): the pace of one clinic's polling while
  more is waiting.
- ``test_event``: asked with :meth:`Platform.send_test_event`, the platform sends a
  sample event to the application's subscription (one Rapport made, so it knows its id)
  and says how Rapport's receiver answered: whether the platform can reach Rapport now.
  A sample naming no account Rapport follows is acknowledged (200, "unknown account")
  and nothing else is done. The console's "Send a test event".

Polling (``Completion.POLLING``), as the seam drives it (``plugin.pipeline.polling``):
every ``RAPPORT_POLL_INTERVAL_SECONDS`` (300 by default) each connected clinic is asked
:meth:`Platform.poll` with the cursor its last poll returned (None the first time) and
``since``: when the clinic was connected, less ``RAPPORT_POLL_HORIZON_HOURS`` (0 by
default); a visit that ended before it never gets a check-in. Each
:attr:`PollPage.deliveries` is stored in the inbox exactly as a webhook delivery is
(deduplicated on the clinic and :meth:`Platform.delivery_id`, read with
:meth:`Platform.parse`, never verified: Rapport made the call) and the cursor is saved
in the same transaction, so a poll cut short starts again from the last saved cursor
and a delivery read twice is stored once. A delivery ``parse`` ignores is left, as a
webhook's would be; one it cannot read is left too, and shown as the poll's problem.
When ``more`` is set, the next poll follows at the declared pace. One clinic is never
polled twice at once. What ``poll`` raises:
:class:`TransientError`, polled again after ``retry_after`` (or a backoff);
:class:`AuthError` or :class:`MissingPermission`, the clinic needs reconnecting and is
not polled until it is; :class:`PermanentError`, the cursor stays, the problem is shown
by ``rapport clinic list``, and the next round tries again.

Every outbound call takes ``credentials``: the clinic's sealed values, opened, plus what
:meth:`Platform.api_context` adds from the installation settings, ``timeout`` (seconds
for each call) and ``http`` (the session to call through, see :func:`http`).
Calls raise the errors of :mod:`handlers.errors`: :class:`TransientError`
(retry later, honouring ``retry_after``), :class:`AuthError` (the clinic must reconnect),
:class:`ConflictError` (re-read and retry), :class:`PermanentError` (of which
:class:`MissingPermission`). Connecting raises :class:`ConnectProblem`, whose message is
for the admin.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import requests

from handlers.bounds import MAX_MINUTES, Instant, in_utc, json_document, json_object
from handlers.declarations import (
    BusinessLocale,
    Capabilities,
    Completion,
    Connection,
    Field,
    NotePlace,
    PollPage,
    Revocation,
    Setting,
    Shown,
    Subscription,
    TestResult,
    Webhooks,
)
from handlers.errors import (
    RECONNECT_ERRORS,
    AdapterError,
    AuthError,
    ConflictError,
    IgnoredEvent,
    MissingPermission,
    PayloadError,
    PermanentError,
    SignatureError,
    TransientError,
)
from handlers.shapes import (
    BOOKED,
    CANCELLED,
    COMPLETED,
    NO_SHOW,
    STATUSES,
    AppointmentEvent,
    Client,
    InboundRequest,
    Note,
    Person,
    WriteBackResult,
    WriteBackTarget,
    event_from_dict,
    event_to_dict,
)
from handlers.text import (
    RETRY_AFTER_LIMIT,
    parse_instant,
    reason_phrase,
    replace_block,
    retry_after_seconds,
    shown_url,
)

__all__ = [
    "BOOKED", "CANCELLED", "COMPLETED", "NO_SHOW", "RECONNECT_ERRORS", "STATUSES",
    "AdapterError", "AppointmentEvent", "AuthError", "BusinessLocale", "Capabilities",
    "Client", "Completion", "ConflictError", "ConnectProblem", "Connection", "Field",
    "IgnoredEvent", "InboundRequest", "MissingPermission", "Note", "NotePlace",
    "PayloadError", "PermanentError", "Person", "Platform", "PollPage", "Revocation",
    "Setting", "Shown", "SignatureError", "Subscription", "TestResult", "TransientError",
    "Webhooks",
    "WriteBackResult", "WriteBackTarget", "event_from_dict", "event_to_dict", "http",
    "parse_instant", "replace_block", "retry_after_seconds",
    "MAX_MINUTES", "RETRY_AFTER_LIMIT", "Instant", "in_utc", "json_document", "json_object",
    "reason_phrase", "shown_url",
]


def http(credentials: Mapping[str, Any]) -> Any:
    """What an adapter makes its HTTP calls with: the ``requests.Session`` the caller put
    in ``credentials["http"]`` (Rapport counts each clinic's calls through it), else the
    ``requests`` module itself. Both have ``request``, ``get``, ``post``, ``put``."""
    return credentials.get("http") or requests


class ConnectProblem(AdapterError):
    """A clinic cannot be connected (or its credentials changed) as asked; the message
    says what to give or do instead, naming the option when one is wrong."""


class Platform:
    """A booking platform: its declaration, and the calls Rapport makes to it.

    Subclasses set the class attributes and implement the methods their declaration
    promises; the defaults here refuse plainly, so a call the declaration does not allow
    is a bug that says so rather than a silent no-op.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    settings: ClassVar[tuple[Setting, ...]] = ()
    connect_fields: ClassVar[tuple[Field, ...]] = ()
    """What ``rapport clinic add`` (and the console) take for this platform."""
    update_fields: ClassVar[tuple[Field, ...]] = ()
    """What ``rapport clinic <platform> KEY`` takes to change a clinic's credentials."""
    connected_message: ClassVar[str] = "Rapport will now follow this clinic's bookings."

    def __repr__(self) -> str:
        return f"<Platform {self.name}>"

    def _refuse(self, what: str) -> PermanentError:
        return PermanentError(f"{self.title} has no {what} (see its Capabilities)")

    # --- installation settings ------------------------------------------------------

    def api_context(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """What API calls need from the installation's settings for this platform (an
        environment, a replaced host), merged into every call's credentials."""
        return {}

    # --- connecting a clinic --------------------------------------------------------

    def connection_of(self, credentials: Mapping[str, Any]) -> Connection:
        """How a clinic with these credentials is connected."""
        return next(iter(self.capabilities.connections))

    def webhooks_of(self, credentials: Mapping[str, Any]) -> Webhooks | None:
        """Where a clinic with these credentials gets its webhooks (None: it does not)."""
        routes = self.capabilities.webhooks
        return next(iter(routes)) if len(routes) == 1 else None

    def credentials_from(self, given: Mapping[str, Any],
                         settings: Mapping[str, Any]) -> dict[str, Any]:
        """The credentials to seal for a clinic added with ``given`` (each connect
        field's value, None where not given). For an OAuth connection, what is stored
        until the admin signs in. Raises :class:`ConnectProblem`."""
        raise ConnectProblem(f"{self.title} clinics cannot be added by hand")

    def prepare_account(self, credentials: Mapping[str, Any]) -> None:
        """Try the credentials with the platform and set up what Rapport needs in the
        account (run when a clinic connects). Raises adapter errors."""

    def explain_refusal(self, error: Exception, credentials: Mapping[str, Any]) -> str:
        """What the admin reads when :meth:`prepare_account` failed while connecting."""
        if isinstance(error, TransientError):
            return f"{self.title} did not answer ({error}); nothing was saved, try again later."
        return f"{self.title} refused the credentials ({error}); nothing was saved."

    def clinic_key(self, credentials: Mapping[str, Any]) -> str | None:
        """The clinic key the platform has already fixed (part of a URL registered by
        hand), or None for a fresh one. Raises :class:`ConnectProblem`."""
        return None

    def shown(self, credentials: Mapping[str, Any]) -> list[Shown]:
        """What the admin copies once the clinic is added, besides its webhook URL."""
        return []

    def next_steps(self, credentials: Mapping[str, Any], clinic_key: str) -> list[str]:
        """Lines telling the admin what to do next, once the clinic is added."""
        return []

    def reconnect_hint(self, credentials: Mapping[str, Any], clinic_key: str) -> str:
        """How a clinic that needs reconnecting is brought back, for a connection that is
        not OAuth (OAuth clinics are sent to their connect link)."""
        return f"give Rapport new credentials: rapport clinic {self.name} {clinic_key} --help"

    def updated_credentials(self, credentials: Mapping[str, Any],
                            given: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """The credentials with the :attr:`update_fields` given, and a line saying what
        they now accept. Raises :class:`ConnectProblem`."""
        raise ConnectProblem(f"{self.title} clinics' credentials are not changed here")

    def new_secret(self) -> str:
        """A fresh inbound secret, for a shared-secret connection (kept, several while
        rotating, as ``credentials["inbound_secrets"]``)."""
        raise self._refuse("shared secrets")

    # Callbacks (NotePlace.CALLBACK): a URL of the clinic's own that Rapport posts to,
    # signed with a secret Rapport keeps for it.

    def callback_url(self, credentials: Mapping[str, Any]) -> str | None:
        """The clinic's callback URL (None: it has none)."""
        return None

    def with_callback_url(self, credentials: Mapping[str, Any], url: str) -> dict[str, Any]:
        """The credentials with a new callback URL (already checked by the caller)."""
        raise self._refuse("callback")

    def with_new_callback_secret(self, credentials: Mapping[str, Any], *,
                                 retire_old: bool) -> tuple[dict[str, Any], str | None]:
        """The credentials with a new callback signing secret, the older ones still
        signing until retired; and the new secret (None when ``retire_old``)."""
        raise self._refuse("callback")

    def business_locale(self, credentials: Mapping[str, Any]) -> BusinessLocale:
        raise self._refuse("business locale")

    def account_id_of(self, credentials: Mapping[str, Any]) -> str | None:
        """The platform account these credentials belong to (routes its webhooks)."""
        return None

    # OAuth (Connection.OAUTH) and token renewal (token_refresh)

    def check_oauth_settings(self, settings: Mapping[str, Any]) -> None:
        """Raise :class:`ConnectProblem` when the installation is not set up for the
        platform's sign-in, naming the settings to give."""
        raise ConnectProblem(f"{self.title} has no sign-in")

    def authorize_url(self, settings: Mapping[str, Any], *, state: str,
                      redirect_uri: str) -> str:
        raise self._refuse("OAuth")

    def exchange_code(self, settings: Mapping[str, Any], *, code: str,
                      redirect_uri: str) -> dict[str, Any]:
        raise self._refuse("OAuth")

    def needs_refresh(self, credentials: Mapping[str, Any], now: datetime) -> bool:
        return False

    def refresh(self, credentials: Mapping[str, Any],
                settings: Mapping[str, Any]) -> dict[str, Any]:
        raise self._refuse("token renewal")

    def token_issued_at(self, credentials: Mapping[str, Any]) -> datetime | None:
        return None

    # Per-application webhooks (Webhooks.PER_APPLICATION) and subscription

    def application_notification_url(self, settings: Mapping[str, Any]) -> str | None:
        """The application subscription's URL when the installation names one (None: the
        seam's default, ``<base URL>/webhooks/<platform>``)."""
        return None

    def application_signature_keys(self, settings: Mapping[str, Any]) -> list[str]:
        """Signature keys of a subscription created by hand, from the settings."""
        return []

    def subscribe_application(self, settings: Mapping[str, Any], url: str) -> Subscription:
        """Create the application's subscription (PER_APPLICATION, ``subscription``)."""
        raise self._refuse("webhook subscription")

    def subscribe_clinic(self, credentials: Mapping[str, Any], url: str) -> dict[str, Any]:
        """Register the clinic's webhook URL in its account (PER_CLINIC, ``subscription``);
        what to add to its stored credentials (the subscription's ids, its key)."""
        raise self._refuse("webhook subscription")

    def send_test_event(self, settings: Mapping[str, Any], subscription_id: str) -> TestResult:
        """Have the platform send a sample event to the application's subscription
        ``subscription_id`` now, and return what it said of Rapport's answer
        (``test_event``). ``settings``: the installation's settings for the platform, with
        what every call takes (``timeout``, ``http``: the call is counted as the clinic's
        whose admin asked). One call; raises adapter errors (:class:`ConnectProblem` when
        the installation lacks what the call needs, naming the setting)."""
        raise self._refuse("test events")

    # --- receiving -------------------------------------------------------------------

    def verify(self, request: InboundRequest, credentials: Mapping[str, Any]) -> None:
        """Raise :class:`SignatureError` unless one of the secrets signed the raw body;
        constant time, failing closed when no secret is configured."""
        raise SignatureError(f"{self.title} sends no webhooks")

    def delivery_id(self, request: InboundRequest) -> str:
        """The delivery's name for deduplication: the platform's event id, or a digest."""
        raise PayloadError("body", f"{self.title} sends no webhooks")

    def parse(self, request: InboundRequest) -> list[AppointmentEvent]:
        """The verified body as events; :class:`PayloadError` naming the field, or
        :class:`IgnoredEvent` for an event Rapport does not act on."""
        raise PayloadError("body", f"{self.title} sends no webhooks")

    def account_id(self, request: InboundRequest) -> str | None:
        """The platform account a per-application delivery belongs to."""
        return None

    def revocation(self, request: InboundRequest) -> Revocation | None:
        """For a delivery telling that an account withdrew Rapport's access: who and when."""
        return None

    def poll(self, credentials: Mapping[str, Any], cursor: str | None, *,
             since: datetime, now: datetime | None = None) -> PollPage:
        """What changed after ``cursor`` (None: the first poll, for visits ending from
        ``since``), as seen at ``now`` (None: the current time). At most a few requests'
        worth: :attr:`PollPage.more` says when more is waiting."""
        raise self._refuse("polling")

    # --- reading ---------------------------------------------------------------------

    def fetch_appointment(self, credentials: Mapping[str, Any],
                          appointment_id: str) -> AppointmentEvent:
        raise self._refuse("API to read appointments from")

    def fetch_client(self, credentials: Mapping[str, Any], client_id: str) -> Client:
        """The client's contact details; only the id when the platform has no API."""
        return Client(id=client_id)

    # --- writing ---------------------------------------------------------------------

    def write_back(self, credentials: Mapping[str, Any], target: WriteBackTarget,
                   note: Note, *, delivery_id: str, occurred_at: datetime) -> WriteBackResult:
        """Write Rapport's note, idempotently: replace Rapport's own block, never touch
        text Rapport did not write. ``delivery_id`` is the same on every attempt."""
        raise self._refuse("write-back")

    def write_booking_note(self, credentials: Mapping[str, Any], booking_id: str,
                           note: Note) -> bool:
        """Put Rapport's block on a booking's own note (NotePlace.NEXT_BOOKING). True when
        the booking carries it afterwards; False when it cannot (the booking is no longer
        active, or too little room is left beside the therapist's own text)."""
        raise self._refuse("booking notes")

