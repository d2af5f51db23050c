"""Square Appointments adapter: webhooks in, customer notes and attributes out.

Square never says "completed": a booking is ACCEPTED, then its time passes. Rapport
therefore derives completion from the end time (``COMPLETION = "end_time"``) and, before
acting, re-reads the booking with :func:`fetch_appointment`, which reports ``completed``
only for a booking that is still ACCEPTED once its last segment has ended.

What Rapport writes, per client:

- its own block in the customer profile's ``note`` (the therapist's text around it is kept
  byte for byte; the update carries the customer ``version`` and is re-read and retried on
  a version conflict);
- a read-only customer custom attribute ``rapport-alliance`` with a one-line summary;
- when the client books again while talking points are open, its block in the new
  booking's ``seller_note`` (which customers never see).

The adapter is a package of small modules, one job each:

- :mod:`~handlers.square.webhooks`: the signature, the delivery id, the seller an event
  belongs to, booking events;
- :mod:`~handlers.square.bookings`: Square's bookings and customers read as Rapport's
  appointments and clients (the status map, the end time, :func:`fetch_appointment`);
- :mod:`~handlers.square.notes`: the write-back (customer note, summary attribute, the next
  booking's seller note);
- :mod:`~handlers.square.install`: the attribute definition and the webhook subscription
  (and a test event sent to it);
- :mod:`~handlers.square.locations`: the business's time zone and language;
- :mod:`~handlers.square.oauth`: the "Connect Square" link and the tokens;
- :mod:`~handlers.square.api`: the HTTP calls and Square's answers as Rapport's errors.

Square facts more than one module relies on, and where they are documented (a fact one
module relies on alone is cited in that module's docstring, with what is not confirmed
there and how it is handled defensively):

- Subscriptions belong to the application, not to a seller: the Webhook Subscriptions API
  refuses OAuth access tokens and needs the application's personal access token, and every
  seller who authorizes the application receives its subscriptions' events (told apart by
  ``merchant_id``).
  https://developer.squareup.com/docs/webhooks/webhook-subscriptions-api,
  https://developer.squareup.com/forums/t/can-we-use-oauth-to-catch-webhook/242
- Booking statuses PENDING, ACCEPTED, CANCELLED_BY_CUSTOMER, CANCELLED_BY_SELLER, DECLINED,
  NO_SHOW; ``booking.updated`` is also published on cancellation; seller-level events need
  APPOINTMENTS_READ and APPOINTMENTS_ALL_READ.
  https://developer.squareup.com/reference/square/enums/BookingStatus and the spec's
  ``BookingCreatedEvent`` / ``BookingUpdatedEvent``.
- Idempotency keys: the same key with the same request returns the first response without
  applying it again; the same key with a different request is an error.
  https://developer.squareup.com/docs/working-with-apis/idempotency
- Customer custom attributes: a definition (key, name, description, String schema on the
  Square CDN, visibility) is created once per seller, then values are upserted per
  customer; ``VISIBILITY_READ_ONLY`` lets the seller and Square products read the value
  while only Rapport writes it; idempotency keys are at most 45 characters.
  https://developer.squareup.com/docs/customer-custom-attributes-api/custom-attribute-definitions,
  https://developer.squareup.com/docs/customer-custom-attributes-api/custom-attributes
"""

from __future__ import annotations

from handlers.square.api import BASE_URLS, CONFLICT_CODES, DEFAULT_TIMEOUT, SQUARE_VERSION
from handlers.square.bookings import STATUSES, fetch_appointment, fetch_client
from handlers.square.install import (
    ATTRIBUTE_KEY,
    STRING_SCHEMA,
    TEST_EVENT_TYPE,
    ensure_attribute_definition,
    send_test_event,
    subscribe,
)
from handlers.square.locations import BusinessLocale, business_locale
from handlers.square.notes import (
    ACTIVE_STATUSES,
    ATTRIBUTE_VALUE_LIMIT,
    CONFLICT_ATTEMPTS,
    SELLER_NOTE_LIMIT,
    attribute_value,
    write_back,
    write_seller_note,
)
from handlers.square.oauth import (
    REFRESH_EVERY,
    SCOPES,
    TOKEN_LIFETIME,
    authorize_url,
    exchange_code,
    needs_refresh,
    refresh_access_token,
    token_issued_at,
)
from handlers.square.platform import PLATFORM, SquarePlatform
from handlers.square.webhooks import (
    APPLICATION_EVENT_TYPES,
    EVENT_HANDLERS,
    EVENT_TYPES,
    REVOKED,
    SIGNATURE_HEADER,
    delivery_id,
    merchant_id,
    parse,
    revocation,
    sign,
    verify,
)

NOTE_LIMIT = PLATFORM.capabilities.note_limit

__all__ = [
    # the platform (handlers.base.Platform) and the calls behind it
    "PLATFORM",
    "SquarePlatform",
    "NOTE_LIMIT",
    "verify",
    "sign",
    "delivery_id",
    "parse",
    "revocation",
    "fetch_appointment",
    "fetch_client",
    "write_back",
    "subscribe",
    # Square's own steps: routing, the booking note, install and OAuth
    "merchant_id",
    "write_seller_note",
    "attribute_value",
    "ensure_attribute_definition",
    "send_test_event",
    "business_locale",
    "BusinessLocale",
    "authorize_url",
    "exchange_code",
    "refresh_access_token",
    "needs_refresh",
    "token_issued_at",
    # constants
    "ACTIVE_STATUSES",
    "ATTRIBUTE_KEY",
    "ATTRIBUTE_VALUE_LIMIT",
    "BASE_URLS",
    "CONFLICT_ATTEMPTS",
    "CONFLICT_CODES",
    "DEFAULT_TIMEOUT",
    "EVENT_HANDLERS",
    "APPLICATION_EVENT_TYPES",
    "EVENT_TYPES",
    "REVOKED",
    "REFRESH_EVERY",
    "SCOPES",
    "SELLER_NOTE_LIMIT",
    "SIGNATURE_HEADER",
    "SQUARE_VERSION",
    "STATUSES",
    "STRING_SCHEMA",
    "TEST_EVENT_TYPE",
    "TOKEN_LIFETIME",
]
