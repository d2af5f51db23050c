"""The schema, built once per session rather than once per test.

SQLite: the migrations run once into a template file; each test's database is a copy.
PostgreSQL: the migrations run once into a schema of this session's own; each test
starts from that schema emptied (every table truncated but the installation's and
Alembic's). A test about the migrations themselves asks for a database built from
nothing (``fresh_database_url``)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from plugin.store import database

POSTGRES_KEPT = {"alembic_version", "installation"}
"""What the migrations write that a test never changes: kept between tests."""


def sqlite_template(folder: Path) -> Path:
    """A SQLite file migrated to the latest revision."""
    path = folder / "template.db"
    engine = database.make_engine(f"sqlite:///{path}")
    database.migrate(engine)
    engine.dispose()  # the last connection out folds the write-ahead log into the file
    return path


def sqlite_copy(template: Path, target: Path) -> str:
    """A database of its own for one test: a copy of the template; its URL."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def in_schema(url: str, schema: str) -> str:
    return f"{url}?options=-csearch_path%3D{schema}"


class PostgresSchemas:
    """Schemas of this session on one PostgreSQL server: one migrated once and emptied
    before each test that uses it, and fresh ones for tests that migrate themselves."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = create_engine(psycopg(url))
        self.created: list[str] = []
        self.migrated: str | None = None
        self._tables: list[str] = []
        self.tests = 0

    def fresh(self) -> str:
        schema = f"rapport_test_{uuid.uuid4().hex[:10]}"
        with self.admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.created.append(schema)
        return in_schema(self.url, schema)

    def drop(self, url: str) -> None:
        schema = url.rsplit("%3D", 1)[1]
        with self.admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        self.created.remove(schema)

    def emptied(self) -> str:
        """The session's migrated schema, every row a test could have left removed.

        Each test gets its own URL to it (its connections named after the test): Rapport
        caches what it reads per database URL, and a new test is a new database."""
        self.tests += 1
        if self.migrated is None:
            self.migrated = self.fresh()
            engine = database.make_engine(self.migrated)
            database.migrate(engine)
            self._tables = [name for name in inspect(engine).get_table_names()
                            if name not in POSTGRES_KEPT]
            engine.dispose()
        else:
            schema = self.migrated.rsplit("%3D", 1)[1]
            tables = ", ".join(f'"{schema}"."{name}"' for name in self._tables)
            with self.admin.begin() as connection:
                connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        return f"{self.migrated}&application_name=rapport-test-{self.tests}"

    def close(self) -> None:
        with self.admin.begin() as connection:
            for schema in self.created:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        self.admin.dispose()
