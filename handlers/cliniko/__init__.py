"""Cliniko adapter: appointments polled in, patient notes and appointment notes out.

Cliniko has no webhooks, so Rapport polls (``Completion.POLLING``): about every five
minutes :func:`~handlers.cliniko.polling.poll` reads what changed and what ended, and
Rapport stores each appointment it read in its inbox as a delivery, deduplicated by
:func:`~handlers.cliniko.deliveries.delivery_id` and turned into events by
:func:`~handlers.cliniko.deliveries.parse`, exactly as webhook deliveries are.

What Rapport writes, per client:

- its own block in the patient's ``notes`` (the clinic's text around it kept byte for
  byte);
- when the client has another appointment booked while talking points are open, its block
  in that appointment's ``notes``.

The adapter is a package of small modules, one job each:

- :mod:`~handlers.cliniko.api`: the shard's host, authentication, the User-Agent, the HTTP
  calls and Cliniko's answers as Rapport's errors;
- :mod:`~handlers.cliniko.appointments`: individual appointments read as Rapport's (the
  status map, :func:`fetch_appointment`);
- :mod:`~handlers.cliniko.polling`: the two windows Rapport reads, the cursor, the pace;
- :mod:`~handlers.cliniko.deliveries`: what the inbox stores, its id, and its parsing;
- :mod:`~handlers.cliniko.patients`: patients read as clients;
- :mod:`~handlers.cliniko.notes`: the write-back and the next appointment's note;
- :mod:`~handlers.cliniko.platform`: the declaration and how a clinic connects.

Cliniko facts more than one module relies on, and where they are documented (a fact one
module relies on alone is cited in that module's docstring, with what is not confirmed
there and how it is handled defensively). Cliniko's reference is
https://docs.api.cliniko.com/; its GitHub predecessor, https://github.com/redguava/cliniko-api,
is no longer updated since 15 November 2022 and is cited where its examples are used.

- No webhooks: none are documented in either, and "Add Webhooks" is an open request on the
  API repository (https://github.com/redguava/cliniko-api/issues/150); polling with
  ``q[]=updated_at:>…`` is the documented way to get "records that have been updated since
  a certain time". https://docs.api.cliniko.com/ ("Filtering Tips")
- The shard is the API key's suffix and chooses the host; Basic authentication with the key
  as user name; a User-Agent naming the application and a contact email; 200 requests a
  minute per user. https://docs.api.cliniko.com/, https://docs.api.cliniko.com/guides/sharding
- Lists hide cancelled and archived records unless asked with ``*``; ids are int64 (as
  text in the current reference); times are UTC. https://docs.api.cliniko.com/,
  https://docs.api.cliniko.com/openapi/reference/tag/Individual-Appointment
"""

from __future__ import annotations

from handlers.cliniko.api import (
    DEFAULT_SHARD,
    HOST_TEMPLATE,
    KNOWN_SHARDS,
    PER_PAGE,
    base_url,
    split_key,
    user_agent,
)
from handlers.cliniko.appointments import fetch_appointment, load, status_of
from handlers.cliniko.deliveries import (
    FETCHED_AT,
    GRACE_MINUTES,
    RECENT,
    SINCE,
    delivery,
    delivery_id,
    parse,
)
from handlers.cliniko.notes import BOOKING_BLOCK_LIMIT, write_back, write_booking_note
from handlers.cliniko.patients import fetch_client
from handlers.cliniko.platform import PLATFORM, ClinikoPlatform
from handlers.cliniko.polling import (
    CALLS_PER_MINUTE,
    DEFAULT_GRACE,
    MAX_CALLS,
    POLL_INTERVAL,
    SETTLE,
    poll,
)

NOTE_LIMIT = PLATFORM.capabilities.note_limit

__all__ = [
    # the platform (handlers.base.Platform) and the calls behind it
    "PLATFORM",
    "ClinikoPlatform",
    "poll",
    "delivery",
    "delivery_id",
    "parse",
    "fetch_appointment",
    "fetch_client",
    "write_back",
    "write_booking_note",
    # Cliniko's own pieces
    "base_url",
    "split_key",
    "user_agent",
    "load",
    "status_of",
    # constants
    "BOOKING_BLOCK_LIMIT",
    "CALLS_PER_MINUTE",
    "DEFAULT_GRACE",
    "DEFAULT_SHARD",
    "FETCHED_AT",
    "GRACE_MINUTES",
    "HOST_TEMPLATE",
    "KNOWN_SHARDS",
    "MAX_CALLS",
    "NOTE_LIMIT",
    "PER_PAGE",
    "POLL_INTERVAL",
    "RECENT",
    "SETTLE",
    "SINCE",
]
