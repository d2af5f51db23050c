"""The seller's business time zone and language, from Square's main location.

A clinic connected without a time zone or a language of its own takes them from here,
so its sending window is in the business's hours and its notes in its language.

Square facts this module relies on, and where they are documented:

- ``GET /v2/locations/main`` returns the seller's main location (the first one, created
  from the business profile); it needs ``MERCHANT_PROFILE_READ``.
  https://developer.squareup.com/reference/square/locations-api/retrieve-location,
  https://developer.squareup.com/docs/locations-api#about-the-main-location
- ``Location.timezone`` is an IANA time zone name; ``Location.language_code`` is BCP 47
  (``en-US``, ``fr-CA``), at most five characters.
  https://developer.squareup.com/reference/square/objects/Location
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handlers.square.api import _call


@dataclass(frozen=True)
class BusinessLocale:
    timezone: str | None
    language: str | None
    """The language subtag alone (``fr`` for ``fr-CA``), lower case."""


def business_locale(credentials: Mapping[str, Any]) -> BusinessLocale:
    """The main location's time zone and language; AdapterError when Square refuses."""
    location = _call(credentials, "GET", "/v2/locations/main").get("location") or {}
    language = str(location.get("language_code") or "").split("-")[0].lower() or None
    return BusinessLocale(timezone=location.get("timezone") or None, language=language)
