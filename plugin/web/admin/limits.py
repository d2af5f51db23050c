"""How often sign-in links may be asked for: per address and per IP.

Counted in Redis, which every web process shares (a counter per address and per IP for
the current hour, ``INCR`` then ``EXPIRE``), so the limits hold however many gunicorn
workers and machines serve the console. Addresses are counted by their SHA-256, never
stored as given. ``ADMIN_LINKS_PER_ADDRESS`` (5) and ``ADMIN_LINKS_PER_IP`` (20) per
hour; the IP is the request's remote address, so behind a proxy set it up to pass the
client's (werkzeug's ``ProxyFix``).
"""

from __future__ import annotations

import hashlib
import time

from flask import current_app

from plugin.store.identity import installation_id
from plugin.tasks import queue

WINDOW_SECONDS = 3600
DEFAULTS = {"ADMIN_LINKS_PER_ADDRESS": 5, "ADMIN_LINKS_PER_IP": 20}


def _key(kind: str, value: str) -> str:
    window = int(time.time() // WINDOW_SECONDS)
    hashed = hashlib.sha256(value.encode()).hexdigest()[:32]
    return f"rapport:{installation_id()}:sign-in:{kind}:{hashed}:{window}"


def allowed(address: str, ip: str) -> bool:
    """Count this request; False when the address or the IP asked too often this hour
    (a refused request counts too, so hammering does not reset anything)."""
    connection = queue.connection()
    over = False
    for kind, value in (("address", address.strip().lower()), ("ip", ip or "unknown")):
        key = _key(kind, value)
        pipe = connection.pipeline()
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS * 2)
        count = pipe.execute()[0]
        limit = int(current_app.config.get(f"ADMIN_LINKS_PER_{kind.upper()}",
                                           DEFAULTS[f"ADMIN_LINKS_PER_{kind.upper()}"]))
        over = over or count > limit
    return not over
