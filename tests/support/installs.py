"""Adding clinics in tests the way ``rapport clinic add`` does, one step at a time."""

from __future__ import annotations

from typing import Any

import handlers
from handlers.base import Connection, ConnectProblem
from plugin.clinics import connecting
from plugin.clinics.platforms import settings_of

InstallError = ConnectProblem


def manual_credentials(platform_name: str, **options: Any) -> dict[str, Any]:
    platform = handlers.platform(platform_name)
    return platform.credentials_from(options, settings_of(platform))


def clinic_key(platform_name: str, credentials: dict[str, Any]) -> str | None:
    return handlers.platform(platform_name).clinic_key(credentials)


def status_for(platform_name: str, credentials: dict[str, Any]) -> str:
    connection = handlers.platform(platform_name).connection_of(credentials)
    return "not_connected" if connection is Connection.OAUTH else "active"


def describe(created) -> dict[str, Any]:
    shown, _labels = connecting.describe(created.clinic, created.credentials)
    return shown
