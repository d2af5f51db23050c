"""A clinic's own settings: check-in timing, instrument choice, flag thresholds, and who
its check-in emails come from (the sender's display name and a reply-to address).

Stored as ``clinic.settings`` (JSON); unset values take the defaults of
:class:`plugin.pipeline.timing.Timing`, :data:`plugin.pipeline.instruments.DEFAULT_POLICY`
and
:class:`questionnaires.FlagSettings`. Every change is validated before it is kept.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from typing import Any

from marshmallow import ValidationError, validate

from plugin.pipeline import instruments
from plugin.pipeline.timing import Timing
from questionnaires import FlagSettings


class SettingsError(ValueError):
    """A setting is out of range or unknown; the message says which and why."""


def effective(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Every setting, with the defaults filled in, as an admin would want to read it."""
    settings = settings or {}
    return {
        "timing": asdict(Timing.from_settings(settings.get("timing"))),
        "instrument": instruments.policy_of(settings),
        "flags": asdict(FlagSettings(**settings.get("flags", {}))),
        "sender": {"name": None, "reply_to": None, "contact": None,
                   **settings.get("sender", {})},
    }


SENDER_NAME_LONGEST = 100
CONTACT_LONGEST = 200


def checked_sender(name: str | None, reply_to: str | None,
                   contact: str | None = None) -> dict[str, str | None]:
    """The sender's display name, reply-to address and the line telling clients how to
    reach the clinic, checked: one line each (a line break would let a value add headers
    of its own), the address a real one. An empty value puts the default back."""
    name = (name or "").strip() or None
    reply_to = (reply_to or "").strip() or None
    contact = (contact or "").strip() or None
    if contact is not None:
        if any(mark in contact for mark in "\r\n\0"):
            raise SettingsError("contact line: one line, without line breaks")
        if len(contact) > CONTACT_LONGEST:
            raise SettingsError(f"contact line: at most {CONTACT_LONGEST} characters")
    if name is not None:
        if any(mark in name for mark in "\r\n\0"):
            raise SettingsError("sender name: one line, without line breaks")
        if len(name) > SENDER_NAME_LONGEST:
            raise SettingsError(f"sender name: at most {SENDER_NAME_LONGEST} characters")
    if reply_to is not None:
        try:
            if any(mark in reply_to for mark in "\r\n\0 <>,\""):
                raise ValidationError("not one plain address")
            validate.Email()(reply_to)
        except ValidationError:
            raise SettingsError(f"reply-to: {reply_to!r} is not an email address "
                                "(e.g. desk@clinic.example)") from None
    return {"name": name, "reply_to": reply_to, "contact": contact}


def updated(settings: dict[str, Any] | None, *, timing: dict[str, Any] | None = None,
            instrument: dict[str, Any] | str | None = None,
            flags: dict[str, Any] | None = None,
            sender: dict[str, str | None] | None = None) -> dict[str, Any]:
    """``settings`` with the given changes, checked; raises :class:`SettingsError`."""
    result = copy.deepcopy(settings or {})
    if timing:
        result["timing"] = {**result.get("timing", {}), **timing}
        try:
            rules = Timing.from_settings(result["timing"])
        except (TypeError, ValueError) as error:
            raise SettingsError(f"check-in timing: {error}")
        if rules.send_delay_minutes < 0 or rules.quiet_days < 0:
            raise SettingsError("check-in timing: delays and quiet days cannot be negative")
        if rules.expire_after_days <= 0:
            raise SettingsError("check-in timing: a check-in must stay open for some time")
    if instrument:
        result["instrument"] = instrument
        for instrument_id in {instruments.policy_of(result)["early"],
                              instruments.policy_of(result)["later"]}:
            if instrument_id not in instruments.registry():
                known = ", ".join(sorted(i.id for i in instruments.registry().all()))
                skipped = sorted({file for file, _, _ in instruments.registry().problems})
                hint = (f" (skipped as broken: {', '.join(skipped)}; run `rapport "
                        "questionnaires check` to see why)") if skipped else ""
                raise SettingsError(f"no instrument {instrument_id!r}; known: {known}{hint}")
    if flags:
        result["flags"] = {**result.get("flags", {}), **flags}
        try:
            FlagSettings(**result["flags"])
        except (TypeError, ValueError) as error:
            raise SettingsError(f"flags: {error}")
    if sender is not None:
        merged = {**result.get("sender", {}), **sender}
        kept = {key: value for key, value in
                checked_sender(merged.get("name"), merged.get("reply_to"),
                               merged.get("contact")).items() if value}
        if kept:
            result["sender"] = kept
        else:
            result.pop("sender", None)
    return result
