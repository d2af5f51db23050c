"""Booking-platform adapters: one folder (or module) per platform, found by name.

``REGISTRY`` is the one list of platforms Rapport supports: adding a platform is its
folder, its tests and fixtures, its docs page, and one line here.
"""

from __future__ import annotations

import importlib
from functools import cache

from handlers.base import Platform

REGISTRY = {
    "acuity": "handlers.acuity",
    "cliniko": "handlers.cliniko",
    "generic": "handlers.generic",
    "mindbody": "handlers.mindbody",
    "square": "handlers.square",
}
PLATFORMS = tuple(REGISTRY)


class UnknownPlatform(LookupError):
    pass


@cache
def platform(name: str) -> Platform:
    """The :class:`~handlers.base.Platform` called ``name``."""
    if name not in REGISTRY:
        raise UnknownPlatform(f"no platform called {name!r}; known: {', '.join(PLATFORMS)}")
    return importlib.import_module(REGISTRY[name]).PLATFORM


def platforms() -> list[Platform]:
    return [platform(name) for name in PLATFORMS]
