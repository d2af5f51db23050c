"""Booking-platform adapters, one module per platform, looked up by name."""

from __future__ import annotations

import importlib
from types import ModuleType

PLATFORMS = ("generic", "square")


class UnknownPlatform(LookupError):
    pass


def adapter(platform: str) -> ModuleType:
    """The module implementing the adapter contract (handlers.base) for ``platform``."""
    if platform not in PLATFORMS:
        known = ", ".join(PLATFORMS)
        raise UnknownPlatform(f"no adapter for platform {platform!r}; known: {known}")
    return importlib.import_module(f"handlers.{platform}")
