"""Reading what Rapport stored, the way the tests check it."""

from __future__ import annotations

from sqlalchemy import select

from plugin.pipeline import instruments
from plugin.store import database as storage
from plugin.store.models import CheckIn


def invitations(app) -> list[CheckIn]:
    """Every check-in in ``app``'s database, oldest first."""
    with app.app_context(), storage.session() as db:
        return list(db.scalars(select(CheckIn).order_by(CheckIn.id)))


def instrument_of(app, check_in_id: int | None = None):
    """The instrument of a check-in (the first one, unless told)."""
    with app.app_context(), storage.session() as db:
        query = select(CheckIn)
        if check_in_id:
            query = query.where(CheckIn.id == check_in_id)
        return instruments.get(db.scalars(query).first().instrument_id)
