"""The name of this installation's database (see ``plugin.store.models.Installation``)."""

from __future__ import annotations

import contextlib

from flask import Flask, current_app


def installation_id(app: Flask | None = None) -> str:
    """Read once per process; it never changes for a database.

    Read on a connection of its own with a plain SELECT, outside any transaction: job
    ids carry it, and a job queues another while its own transaction holds SQLite's
    write lock, which a transaction begun here (``BEGIN IMMEDIATE``) would wait for.
    """
    extensions = (app or current_app).extensions
    if "rapport.installation" not in extensions:
        connection = extensions["rapport.engine"].raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT id FROM installation")
            row = cursor.fetchone()
        finally:
            with contextlib.suppress(Exception):
                connection.rollback()
            connection.close()
        if row is None:
            raise RuntimeError("the database has no installation row: run the migrations")
        extensions["rapport.installation"] = row[0]
    return extensions["rapport.installation"]
