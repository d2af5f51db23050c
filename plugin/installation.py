"""The name of this installation's database (see ``plugin.models.Installation``)."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from plugin.models import Installation


def installation_id() -> str:
    """Read once per process; it never changes for a database."""
    extensions = current_app.extensions
    if "rapport.installation" not in extensions:
        with extensions["rapport.engine"].connect() as connection:
            name = connection.execute(select(Installation.id)).scalar()
        if name is None:
            raise RuntimeError("the database has no installation row: run the migrations")
        extensions["rapport.installation"] = name
    return extensions["rapport.installation"]
