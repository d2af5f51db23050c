"""Storage on SQLite and on PostgreSQL: migrations, time zones, uniqueness, sealing."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from plugin.pipeline import instruments
from plugin.store import database as storage
from plugin.store.models import Appointment, CheckIn, Clinic, InboxEvent, WriteBack
from tests.support.generic import add_generic_clinic, event_body, sign_generic, webhook_path
from tests.support.survey import answer, answers_for, survey_path
from tests.support.waiting import wait_until


@pytest.fixture
def db_app(app_factory, database_url):
    """Rapport on each database, its schema at the latest revision already."""
    return app_factory(DATABASE_URL=database_url)


@pytest.fixture
def migrated_app(app_factory, fresh_database_url):
    """Rapport on each database, built from nothing by the migrations as it starts."""
    return app_factory(DATABASE_URL=fresh_database_url)


@pytest.fixture
def db_clinic(db_app, callback_receiver):
    return add_generic_clinic(db_app, callback_url=callback_receiver.url,
                              timezone="America/Montreal")


def test_migrations_bring_the_schema_to_head(migrated_app):
    engine = migrated_app.extensions["rapport.engine"]
    tables = set(inspect(engine).get_table_names())
    assert {"clinics", "inbox_events", "appointments", "check_ins", "survey_links",
            "responses", "write_backs", "write_back_attempts", "opt_outs",
            "alembic_version"} <= tables
    head = ScriptDirectory.from_config(storage.alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    storage.migrate(engine)  # running again is a no-op


def test_sqlite_runs_in_wal_mode(app):
    with app.app_context(), storage.engine().connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_stored_events_reach_the_sqlite_file_itself_soon_after(app, deliver_generic, tmp_path):
    """The inbox writer leaves copying SQLite's write-ahead log into the database to a
    thread of its own; what it commits still reaches the database file within a
    moment, as a copy of that file alone (no log beside it) shows."""
    for index in range(5):
        assert deliver_generic(appointment_id=f"A-{index}").status_code == 202
    database = Path(app.config["DATABASE_URL"].removeprefix("sqlite:///"))

    def rows_in_the_file_alone() -> int:
        copy = tmp_path / "copy.db"
        shutil.copyfile(database, copy)
        with contextlib.closing(sqlite3.connect(copy)) as connection:
            return connection.execute("SELECT count(*) FROM inbox_events").fetchone()[0]

    wait_until(lambda: rows_in_the_file_alone() == 5, timeout=5, what="the rows in the file")


def test_times_come_back_aware_utc(db_app, db_clinic):
    moment = datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)
    with db_app.app_context(), storage.session() as db:
        clinic_id = db.scalar(select(Clinic.id))
        db.add(Appointment(clinic_id=clinic_id, external_id="A-1", status="booked",
                           client_external_id="C-1", start_at=moment))
    with db_app.app_context(), storage.session() as db:
        stored = db.scalar(select(Appointment.start_at))
    assert stored == moment
    assert stored.tzinfo is not None


def test_credentials_are_sealed_at_rest(db_app, db_clinic):
    with db_app.app_context(), storage.engine().connect() as connection:
        raw = connection.execute(text("SELECT credentials FROM clinics")).scalar()
    assert db_clinic["webhook_secret"] not in raw
    assert db_clinic["callback_secret"] not in raw
    assert "inbound_secrets" not in raw


def test_the_whole_loop_on_this_database(db_app, db_clinic, mailbox, callback_receiver):
    from plugin.tasks import worker

    client = db_app.test_client()
    body = event_body()
    for _ in range(3):
        client.post(webhook_path(db_clinic), data=body, headers=sign_generic(body, db_clinic, "m1"))
    with db_app.app_context():
        worker.drain(forking=False)
        assert len(mailbox.messages) == 1
        with storage.session() as db:
            assert db.scalar(select(InboxEvent.processed_at)) is not None
            instrument = instruments.get(db.scalar(select(CheckIn.instrument_id)))
        answer(client, survey_path(mailbox.messages[0]), answers_for(instrument))
        worker.drain(forking=False)
        with storage.session() as db:
            assert db.scalar(select(WriteBack.status)) == "delivered"
    assert len(callback_receiver.received) == 1


def test_concurrent_deliveries_are_stored_once_each_and_duplicates_told_apart(db_app, db_clinic):
    """Deliveries arriving together share the inbox's commits; the same delivery sent
    three times at once, even within one commit, is stored once and acknowledged once."""
    client = db_app.test_client()
    deliveries = []
    for index in range(20):
        body = event_body(appointment_id=f"A-{index}")
        headers = sign_generic(body, db_clinic, f"m-{index}")
        deliveries += [(body, headers)] * 3

    def post(delivery):
        response = client.post(webhook_path(db_clinic), data=delivery[0], headers=delivery[1])
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(post, deliveries))
    accepted = {body["id"]: delivery[1]["webhook-id"]
                for delivery, (status, body) in zip(deliveries, answers, strict=True)
                if status == 202}
    duplicates = [body for status, body in answers if status == 200]
    assert len(accepted) == 20
    assert duplicates == [{"status": "duplicate"}] * 40
    with db_app.app_context(), storage.session() as db:
        stored = dict(db.execute(select(InboxEvent.id, InboxEvent.delivery_id)).all())
    # Each answer names the row its own delivery was stored in.
    assert stored == accepted
    assert sorted(stored.values()) == sorted(f"m-{i}" for i in range(20))


def test_one_commit_of_new_and_known_deliveries_gives_each_new_one_its_own_row(db_app, db_clinic):
    """The inbox writer's commit, given a batch directly: deliveries stored before, and
    one delivery twice in the batch, are told apart from the new ones by their rows."""
    from plugin.web.inbox import _Pending, inbox

    box = inbox(db_app)
    with db_app.app_context(), storage.session() as db:
        clinic_id = db.scalar(select(Clinic.id))

    def pending(delivery_id: str) -> _Pending:
        row = (clinic_id, delivery_id, datetime.now(timezone.utc), b"{}", {}, [], 0)
        return _Pending((clinic_id, delivery_id), box.statement.params(row))

    box._commit([pending("d-1"), pending("d-2")])
    batch = [pending("d-0"), pending("d-1"), pending("d-3"), pending("d-3"), pending("d-4")]
    box._commit(batch)
    with db_app.app_context(), storage.session() as db:
        stored = dict(db.execute(select(InboxEvent.id, InboxEvent.delivery_id)).all())
    assert [stored.get(item.inbox_id) for item in batch] == ["d-0", None, "d-3", None, "d-4"]
    assert sorted(stored.values()) == ["d-0", "d-1", "d-2", "d-3", "d-4"]

    fresh = [pending("d-5"), pending("d-6")]  # every one new: the ids come in order
    box._commit(fresh)
    with db_app.app_context(), storage.session() as db:
        stored = dict(db.execute(select(InboxEvent.id, InboxEvent.delivery_id)).all())
    assert [stored[item.inbox_id] for item in fresh] == ["d-5", "d-6"]


def test_the_migrations_build_exactly_the_models_schema(migrated_app):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from plugin.store.models import Base

    with migrated_app.extensions["rapport.engine"].connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def waiting_on_locks(engine) -> int:
    """How many of this database's connections wait on a lock (read afresh: a
    transaction would see one snapshot of pg_stat_activity throughout)."""
    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar()


def waiting_to_begin(thread_id: int) -> bool:
    """Whether the thread waits to begin a transaction on SQLite (for the write lock)."""
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code.co_name == "_sqlite_begin_immediate":
            return True
        frame = frame.f_back
    return False


def test_one_write_back_run_twice_at_once_posts_one_callback(db_app, db_clinic, mailbox,
                                                             callback_receiver):
    """Two runs of one write-back at the same moment (its retry and the sweeper's nudge on
    two workers) deliver it once: the second finds it claimed by the first."""
    from plugin.pipeline.write_back import deliver_write_back
    from plugin.tasks import worker
    from plugin.web import inbox

    client = db_app.test_client()
    body = event_body()
    assert client.post(webhook_path(db_clinic), data=body,
                       headers=sign_generic(body, db_clinic)).status_code == 202
    inbox.inbox(db_app).flush()
    with db_app.app_context():
        worker.drain(forking=False)
        with storage.session() as db:
            instrument = instruments.get(db.scalar(select(CheckIn.instrument_id)))
    url = db_app.config["DATABASE_URL"]
    postgres = url.startswith("postgresql")
    # The answer's write-back job is left queued: the two runs below are the ones raced.
    answer(client, survey_path(mailbox.messages[0]), answers_for(instrument))

    # Another transaction holds the write-back's row (on SQLite, the whole database), so
    # both runs wait to go on from the same starting point.
    engine = db_app.extensions["rapport.engine"]
    with engine.connect() as holder:
        holder.execute(select(WriteBack.id).with_for_update())
        with db_app.app_context(), ThreadPoolExecutor(max_workers=2) as pool:
            context = db_app.app_context
            threads = []

            def run():
                threads.append(threading.get_ident())
                with context():
                    return deliver_write_back(1)

            runs = [pool.submit(run) for _ in range(2)]
            try:
                if postgres:
                    wait_until(lambda: waiting_on_locks(engine) >= 2, timeout=10,
                               what="both runs to wait on the row")
                else:
                    wait_until(lambda: len(threads) == 2 and all(
                        waiting_to_begin(thread) for thread in threads), timeout=10,
                               what="both runs to wait for the database")
            finally:
                holder.rollback()
            for finished in runs:
                finished.result(timeout=30)
    assert len(callback_receiver.received) == 1
    with db_app.app_context(), storage.session() as db:
        assert db.scalar(select(WriteBack.status)) == "delivered"


def test_two_visits_of_one_client_completed_at_once_get_one_check_in(db_app, db_clinic):
    """Two completed appointments of one client (two services back to back), ingested at
    the same moment by two workers: one check-in, the other skipped as one is open."""
    from plugin.pipeline.ingest import ingest_event
    from plugin.web import inbox

    client = db_app.test_client()
    pairs = []
    for index in range(10):
        pair = []
        for part in (1, 2):
            body = event_body(appointment_id=f"A-{index}-{part}", client_id=f"C-{index}")
            answer_ = client.post(webhook_path(db_clinic), data=body,
                                  headers=sign_generic(body, db_clinic))
            pair.append(answer_.get_json()["id"])
        pairs.append(pair)
    inbox.inbox(db_app).flush()
    for pair in pairs:
        together = threading.Barrier(2)

        def ingest(inbox_id, together=together):
            with db_app.app_context():
                together.wait()
                ingest_event(inbox_id)

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(ingest, pair))
    with db_app.app_context(), storage.session() as db:
        statuses = db.execute(select(CheckIn.client_external_id, CheckIn.status)
                              .order_by(CheckIn.client_external_id)).all()
    by_client: dict[str, list[str]] = {}
    for client_id, status in statuses:
        by_client.setdefault(client_id, []).append(status)
    assert {client_id: sorted(found) for client_id, found in by_client.items()} == {
        f"C-{index}": ["scheduled", "skipped"] for index in range(10)}
