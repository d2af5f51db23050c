"""The CSV export: the period's answers, one row each, no email address, tests left out,
formulas defused."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from plugin.clinics import records
from plugin.store import database
from tests.support import clinic_data, console

SEPT = datetime(2026, 9, 10, 15, tzinfo=timezone.utc)


@pytest.fixture
def signed_in(app, web, generic_clinic):
    return console.sign_in(app, web, "dana@harbour.example", generic_clinic["key"])


def test_the_csv_has_one_row_per_answer_in_the_period(app, signed_in, generic_clinic):
    with app.app_context(), database.session() as db:
        clinic_id = records.by_key(db, generic_clinic["key"]).id
        clinic_data.answered_visit(db, clinic_id, "C-1", SEPT, 9)
        clinic_data.answered_visit(db, clinic_id, "=HYPERLINK(1)", SEPT + timedelta(days=1), 3,
                                   therapist=("T-2", "Lee"))
        clinic_data.answered_visit(db, clinic_id, "C-1", SEPT + timedelta(days=40), 7)
        clinic_data.answered_visit(db, clinic_id, "C-5", SEPT - timedelta(days=60), 7)
        test = clinic_data.visit(db, clinic_id, "test:dana@harbour.example", SEPT)
        clinic_data.answer(db, clinic_data.check_in(db, test, sent_at=SEPT, test=True), 1,
                           SEPT + timedelta(hours=1))
    answer = signed_in.get(
        f"/admin/clinics/{generic_clinic['key']}/export.csv?from=2026-09&to=2026-10")
    assert answer.status_code == 200 and answer.is_streamed
    assert answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    text = answer.get_data(as_text=True)
    assert "@" not in text  # no address of anyone
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(row["date"], row["therapist_id"], row["client_id"], row["overall"], row["band"])
            for row in rows] == [
        ("2026-09-10", "T-1", "C-1", "90.0", "working-well"),
        ("2026-09-11", "T-2", "'=HYPERLINK(1)", "30.0", "needs-attention"),
        ("2026-10-20", "T-1", "C-1", "70.0", "some-concerns"),
    ]
    assert rows[0]["instrument"] == "rapport-pulse" and rows[0]["subscales"].startswith("{")
    assert rows[2]["flags"] == "drop"


def test_a_bad_period_is_refused_next_to_its_field(signed_in, generic_clinic):
    answer = signed_in.get(
        f"/admin/clinics/{generic_clinic['key']}/export.csv?from=2026-13&to=2026-10")
    assert answer.status_code == 400
    assert 'id="export-from-error"' in answer.get_data(as_text=True)
    backwards = signed_in.get(
        f"/admin/clinics/{generic_clinic['key']}/export.csv?from=2026-10&to=2026-01")
    assert backwards.status_code == 400 and "must end after it starts" in backwards.get_data(
        as_text=True)
