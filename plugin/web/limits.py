"""Rate limits for what anyone can send without credentials (docs/security.md).

Two limits, per client address, counted in fixed one-minute windows by each web
process (with N processes an address may get up to N times the limit; the point is to
stop one source from hammering, not to meter):

- ``RATE_LIMIT_PAGES``: requests to the pages anyone can open (``/s/…``, ``/connect/…``,
  ``/healthz``). Past it: 429 with ``Retry-After``.
- ``RATE_LIMIT_WEBHOOK_REFUSALS``: webhook requests Rapport refused (a bad signature, an
  unknown clinic or platform). Past it, that address's webhook requests get 429 before
  their body is read, until the minute is over. Accepted deliveries never count, so a
  platform's bursts are never slowed.

The client address is ``REMOTE_ADDR``: behind reverse proxies, set ``PROXY_COUNT`` so it
is the client's rather than the proxy's (``plugin.web.proxies``).
"""

from __future__ import annotations

import threading
import time

from flask import Flask, current_app, jsonify, request

WINDOW_SECONDS = 60
MAX_TRACKED = 50_000  # addresses kept per limit; the oldest window is dropped past it
LIMITED_PREFIXES = ("/s/", "/connect/", "/healthz")


class Limit:
    """At most ``per_minute`` hits per key in each minute (0: unlimited)."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        self.lock = threading.Lock()
        self.window = 0
        self.counts: dict[str, int] = {}

    def _current(self) -> dict[str, int]:
        window = int(self.clock() // WINDOW_SECONDS)
        if window != self.window:
            self.window, self.counts = window, {}
        return self.counts

    def hit(self, key: str) -> bool:
        """Count one hit; False when ``key`` is over the limit (the hit is refused)."""
        if not self.per_minute:
            return True
        with self.lock:
            counts = self._current()
            if key not in counts and len(counts) >= MAX_TRACKED:
                counts.clear()
            counts[key] = counts.get(key, 0) + 1
            return counts[key] <= self.per_minute

    def exceeded(self, key: str) -> bool:
        """Whether ``key`` is already over the limit, without counting a hit."""
        if not self.per_minute:
            return False
        with self.lock:
            return self._current().get(key, 0) >= self.per_minute

    def retry_after(self) -> int:
        return max(1, int(WINDOW_SECONDS - self.clock() % WINDOW_SECONDS))


def client_address(environ: dict) -> str:
    return environ.get("REMOTE_ADDR") or "unknown"


def limits(app: Flask) -> dict[str, Limit]:
    return app.extensions["rapport.limits"]


def init_app(app: Flask) -> None:
    app.extensions["rapport.limits"] = {
        "pages": Limit(app.config["RATE_LIMIT_PAGES"]),
        "webhook_refusals": Limit(app.config["RATE_LIMIT_WEBHOOK_REFUSALS"]),
    }

    @app.before_request
    def limit_pages():
        if not request.path.startswith(LIMITED_PREFIXES):
            return None
        pages = limits(current_app)["pages"]
        if pages.hit(client_address(request.environ)):
            return None
        response = jsonify(error="too many requests from this address; try again shortly")
        response.status_code = 429
        response.headers["Retry-After"] = str(pages.retry_after())
        return response
