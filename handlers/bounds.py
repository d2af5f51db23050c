"""What any signed body must be within before Rapport reads it as a visit: JSON that is
not nested past what Python can walk, times within the years a booking can have, and
durations within a week. Each adapter uses these, so a signed body outside them is a
:class:`~handlers.errors.PayloadError` naming the field (400), never an error Rapport
did not foresee (which the receiver would have answered 500, retried for days)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields

from handlers.errors import PayloadError

EARLIEST_YEAR, LATEST_YEAR = 1970, 2200
MAX_MINUTES = 7 * 24 * 60  # no appointment segment, nor a pause, lasts longer than a week
# What JSON allows in a string and no database stores as text: a surrogate written as an
# escape (``\ud800``) or as the three bytes UTF-8 would give it (``json.loads`` reads
# those from bytes), alone rather than in a pair; and NUL (``\u0000``: not in PostgreSQL).
UNSTORABLE = re.compile(rb"\\u[dD][89abcdefABCDEF]|\xed[\xa0-\xbf]|\\u0000")
# The largest version (Square's bookings') that a database's INTEGER holds.
MAX_VERSION = 2 ** 31 - 1


def json_document(body: bytes) -> Any:
    """The body as JSON; :class:`PayloadError` for anything else, including JSON nested
    deeper than the parser can go, and a string holding half a surrogate pair or NUL
    (valid JSON, but no database stores it as text), which is named by its place."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise PayloadError("body", f"not valid JSON ({error.__class__.__name__})") from None
    if UNSTORABLE.search(body):
        _refuse_unstorable(document)
    return document


def _refuse_unstorable(document: Any) -> None:
    todo: list[tuple[tuple, Any]] = [((), document)]
    while todo:
        place, value = todo.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not _is_text(key):
                    raise PayloadError(".".join((*place, "<key>")) if place else "body",
                                       "a key holds NUL or half a surrogate pair")
                todo.append(((*place, key), item))
        elif isinstance(value, list):
            todo += [((*place, str(index)), item) for index, item in enumerate(value)]
        elif isinstance(value, str) and not _is_text(value):
            raise PayloadError(".".join(place) or "body",
                               "holds NUL or half a surrogate pair (\\ud800–\\udfff), "
                               "which no database stores as text")


def _is_text(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_object(body: bytes) -> dict[str, Any]:
    document = json_document(body)
    if not isinstance(document, dict):
        raise PayloadError("body", "expected a JSON object")
    return document


def in_utc(when: datetime) -> datetime:
    """``when`` in UTC, if it is a time a booking can have; ValueError otherwise (a time
    in year 1 with an offset cannot even be moved to UTC)."""
    try:
        moved = when.astimezone(UTC)
    except OverflowError:
        moved = None
    if moved is None or not EARLIEST_YEAR <= moved.year <= LATEST_YEAR:
        raise ValueError(f"not between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return moved


class Instant(fields.AwareDateTime):
    """An ISO 8601 time with a zone (``default_timezone`` for one without), read in UTC
    and within :data:`EARLIEST_YEAR`–:data:`LATEST_YEAR`."""

    def _deserialize(self, value, attr, data, **kwargs):
        when = super()._deserialize(value, attr, data, **kwargs)
        try:
            return in_utc(when)
        except ValueError as error:
            raise ValidationError(f"Not a valid date and time ({error}).") from None
