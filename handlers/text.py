"""Small helpers adapters share: times as platforms send them, Rapport's block in a
note, ``Retry-After``."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from handlers.shapes import Note


def parse_instant(value: object) -> datetime | None:
    """An RFC 3339 time as platforms send it (``…Z`` or with an offset), in UTC when it
    gives no zone; None when it is not one."""
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _marker_line(text: str, marker: str, start: int = 0) -> re.Match | None:
    """``marker`` standing on a line of its own in ``text``, at or after ``start``; the
    line may end in CRLF (a note saved from a Windows or web form), whose CR stays with
    the line ending rather than the block."""
    return re.compile(rf"^{re.escape(marker)}[ \t]*(?=\r?$)", re.MULTILINE).search(text, start)


def replace_block(existing: str | None, note: Note) -> str:
    """Put ``note.text`` in place of Rapport's block in ``existing``.

    The block is what lies between the marker lines (``[Rapport]`` … ``[/Rapport]``,
    each on a line of its own): a therapist writing "[Rapport]" inside a sentence does
    not start one. Text outside the block is kept byte for byte. Without a block, the
    note is added after the existing text, after a blank line.
    """
    existing = existing or ""
    start = _marker_line(existing, note.block_start)
    if start is not None:
        end = _marker_line(existing, note.block_end, start.end())
        if end is not None:
            return existing[:start.start()] + note.text + existing[end.end():]
    if not existing.strip():
        return note.text
    gap = "" if existing.endswith("\n\n") else "\n" if existing.endswith("\n") else "\n\n"
    return existing + gap + note.text


RETRY_AFTER_LIMIT = 86400.0  # a day: a longer wait asked for is waited as a day


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header given in seconds or as an HTTP date; at most a
    day, and None for what is not a number of seconds or a date (``inf``, ``nan``)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return min(max(0.0, seconds), RETRY_AFTER_LIMIT) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    try:
        wait = (when - datetime.now(timezone.utc)).total_seconds()
    except OverflowError:
        return None
    return min(max(0.0, wait), RETRY_AFTER_LIMIT)


def reason_phrase(reason: object) -> str:
    """An HTTP answer's reason phrase as Rapport keeps and prints it: printable ASCII,
    60 characters at most (never anything else the answer said)."""
    text = reason.decode("latin-1") if isinstance(reason, bytes) else str(reason or "")
    return "".join(char for char in text if " " <= char <= "~")[:60].strip()


def shown_url(url: str) -> str:
    """``url`` as shown in errors and logs: without credentials, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
