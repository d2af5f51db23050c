"""A clinic's own settings: check-in timing, instrument choice, flag thresholds.

Stored as ``clinic.settings`` (JSON); unset values take the defaults of
:class:`plugin.pipeline.timing.Timing`, :data:`plugin.pipeline.instruments.DEFAULT_POLICY`
and
:class:`questionnaires.FlagSettings`. Every change is validated before it is kept.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from typing import Any

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
    }


def updated(settings: dict[str, Any] | None, *, timing: dict[str, Any] | None = None,
            instrument: dict[str, Any] | str | None = None,
            flags: dict[str, Any] | None = None) -> dict[str, Any]:
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
    return result
