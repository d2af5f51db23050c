"""Mindbody adapter: appointment webhooks in, client and appointment notes out.

Mindbody says "completed" itself: an ``appointmentBooking.updated`` event whose status is
``Completed`` (``COMPLETION = "status"``), and the event carries the client's name and
email, the staff member and the times, so a completed visit costs no read at all.

What Rapport writes, per client (``Notes`` is staff-only in Mindbody):

- its own block in the client's account notes (the therapist's text around it is kept
  byte for byte; nothing is sent when the block is already there);
- when the client has another appointment ahead while talking points are open, its block
  in that appointment's notes.

Mindbody bills Public API calls beyond the developer account's allowance, so the adapter
reads only what an event does not carry and keeps the staff user token between calls.
One completed visit costs 2 calls (read the client, update the client), plus 2 when the
next appointment gets the talking points (read it, update it), plus a token issue when
the kept one has expired (docs/platforms/mindbody.md, "What a visit costs").

The adapter is a package of small modules, one job each:

- :mod:`~handlers.mindbody.webhooks`: the signature, the delivery id, the site an event
  belongs to, appointment events and the status map;
- :mod:`~handlers.mindbody.appointments`: appointments and clients read through the
  Public API;
- :mod:`~handlers.mindbody.notes`: the write-back (client notes, the next appointment's
  notes);
- :mod:`~handlers.mindbody.install`: the application's subscription, a site's activation
  link, the first call that tries a site;
- :mod:`~handlers.mindbody.api`: the HTTP calls, the staff user token, Mindbody's answers
  as Rapport's errors;
- :mod:`~handlers.mindbody.platform`: the declaration and how a clinic connects.

Mindbody facts more than one module relies on, and where they are documented (a fact one
module relies on alone is cited in that module's docstring, with what is not confirmed
there and how it is handled defensively):

- Going live: Mindbody approves the developer account, then each business activates the
  link between the developer account and its site; the Webhooks API key is created
  beside the Public API key on the developer portal's API Credentials page, and is a
  different key. https://developers.mindbodyonline.com/WebhooksDocumentation (Getting
  Started), https://www.npmjs.com/package/mindbody-sdk-forked ("Webhooks API Key is
  different than Public API Key").
- Subscriptions belong to the developer account, not to a business: one subscription
  carries the events of every activated site, each event naming its ``siteId``.
  https://developers.mindbodyonline.com/WebhooksDocumentation#subscriptions
- Billing: calls beyond the allowance are charged per call; integrators cite 1,000 free
  calls a day per key (not on Mindbody's own pages, which leave the amounts to the
  contract). https://github.com/api-evangelist/mindbody (rate-limits, plans).
"""

from __future__ import annotations

from handlers.mindbody.api import PUBLIC_API, WEBHOOKS_API, issue_token
from handlers.mindbody.appointments import fetch_appointment, fetch_client
from handlers.mindbody.install import activation, subscribe, subscriptions, try_site
from handlers.mindbody.notes import (
    ACTIVE_STATUSES,
    APPOINTMENT_NOTES_LIMIT,
    write_back,
    write_booking_note,
)
from handlers.mindbody.platform import PLATFORM, MindbodyPlatform
from handlers.mindbody.webhooks import (
    EVENT_TYPES,
    SIGNATURE_HEADER,
    STATUSES,
    delivery_id,
    parse,
    sign,
    site_id,
    verify,
)

NOTE_LIMIT = PLATFORM.capabilities.note_limit

__all__ = [
    "PLATFORM",
    "MindbodyPlatform",
    "NOTE_LIMIT",
    "verify",
    "sign",
    "delivery_id",
    "parse",
    "site_id",
    "fetch_appointment",
    "fetch_client",
    "write_back",
    "write_booking_note",
    "subscribe",
    "subscriptions",
    "activation",
    "try_site",
    "issue_token",
    "ACTIVE_STATUSES",
    "APPOINTMENT_NOTES_LIMIT",
    "EVENT_TYPES",
    "PUBLIC_API",
    "SIGNATURE_HEADER",
    "STATUSES",
    "WEBHOOKS_API",
]
