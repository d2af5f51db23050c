"""Who a check-in goes to, by address rather than by client profile.

Platforms name clients by their own ids, and one person can have several profiles (a
duplicate made at the front desk, a second booking made as a guest). What protects a
person is keyed to their address instead, and never keeps it (docs/security.md):

- opting out records a keyed hash of the address (HMAC-SHA256, keyed by a key derived
  from ``SECRET_KEY``, of the address trimmed and lower-cased) for the clinic, and no
  check-in goes to that address from that clinic again, under any profile;
- one address gets at most ``ADDRESS_CHECK_IN_LIMIT`` unanswered check-ins from one
  clinic in ``ADDRESS_CHECK_IN_PERIOD_DAYS`` days, whatever the profiles and whatever the
  events say: whoever holds a clinic's webhook secret cannot mail an address in the clinic's
  name more often than that.

Both are checked when a check-in is planned (where the event gives the address) and
again when it is sent. The hash cannot be turned back into the address, but whoever
has the secret key and an address can tell whether it opted out: it is pseudonymous.
A new ``SECRET_KEY`` makes earlier opt-outs by address unrecognisable (the ones by
client id stay).
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from plugin.store.models import CheckIn, OptOutAddress

PURPOSE = b"rapport/opt-out-address/v1"


def address_hash(address: str | None) -> str | None:
    """The keyed hash of ``address`` (None for no address)."""
    if not address or not address.strip():
        return None
    normalized = unicodedata.normalize("NFC", address.strip()).lower()
    key = hmac.new(str(current_app.config["SECRET_KEY"]).encode(), PURPOSE,
                   hashlib.sha256).digest()
    return hmac.new(key, normalized.encode(), hashlib.sha256).hexdigest()


def opted_out(db: Session, clinic_id: int, hashed: str | None) -> bool:
    if hashed is None:
        return False
    return bool(db.scalar(select(exists().where(
        OptOutAddress.clinic_id == clinic_id, OptOutAddress.address_hash == hashed))))


def opt_out(db: Session, clinic_id: int, hashed: str | None, at: datetime) -> None:
    if hashed is None:
        return
    dialect = postgresql if db.bind.dialect.name == "postgresql" else sqlite
    db.execute(dialect.insert(OptOutAddress).values(
        clinic_id=clinic_id, address_hash=hashed, created_at=at).on_conflict_do_nothing())


def opt_back_in(db: Session, clinic_id: int, hashed: str | None) -> None:
    """The person asked for check-ins again (the way back from unsubscribing)."""
    if hashed is None:
        return
    db.execute(delete(OptOutAddress).where(OptOutAddress.clinic_id == clinic_id,
                                           OptOutAddress.address_hash == hashed))


def over_limit(db: Session, clinic_id: int, hashed: str | None, now: datetime, *,
               check_in_id: int | None = None) -> str | None:
    """Why the address may not get another check-in now (its limit for the period is
    reached), or None. Counts the check-ins whose sending began in the period and that
    were not answered: a client who answers is glad of them; an address mailed by
    someone abusing a clinic's secret answers none."""
    limit = current_app.config["ADDRESS_CHECK_IN_LIMIT"]
    if hashed is None or not limit:
        return None
    days = current_app.config["ADDRESS_CHECK_IN_PERIOD_DAYS"]
    sent = db.scalar(select(func.count(CheckIn.id)).where(
        CheckIn.clinic_id == clinic_id, CheckIn.address_hash == hashed,
        CheckIn.test.is_(False), CheckIn.claimed_at >= now - timedelta(days=days),
        CheckIn.answered_at.is_(None),
        CheckIn.id != (check_in_id or 0)))
    if sent >= limit:
        return (f"this address already had {sent} unanswered check-in(s) in the last {days} days "
                f"(at most {limit}: ADDRESS_CHECK_IN_LIMIT)")
    return None
