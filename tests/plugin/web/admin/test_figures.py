"""The dashboard's figures from known data: each number is counted by hand here."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from plugin.clinics import records
from plugin.store import database
from plugin.store.models import Clinic
from plugin.web.admin import figures
from tests.support import clinic_data

SEPT = datetime(2026, 9, 10, 15, tzinfo=timezone.utc)
OCT = datetime(2026, 10, 12, 15, tzinfo=timezone.utc)
PERIOD = figures.Period(date(2026, 9, 1), date(2026, 11, 1), "Europe/London")
LATER = datetime(2027, 6, 1, tzinfo=timezone.utc)  # every horizon has passed
DANA, LEE = ("T-1", "Dana"), ("T-2", "Lee")


@pytest.fixture
def history(app, generic_clinic):
    """September: Dana's C-1 (9/10) and C-2 (3/10) answer, C-3 lets it expire; Lee's five
    clients answer 8/10. October: Dana's C-1 answers 7/10, C-4 has not answered yet.
    November: an admin's test, answered 0/10. Later bookings as the retention test says."""
    with app.app_context(), database.session() as db:
        clinic_id = records.by_key(db, generic_clinic["key"]).id
        add = clinic_data.answered_visit
        add(db, clinic_id, "C-1", SEPT, 9, therapist=DANA)
        add(db, clinic_id, "C-2", SEPT + timedelta(days=1), 3, therapist=DANA)
        expired = clinic_data.visit(db, clinic_id, "C-3", SEPT, therapist=DANA)
        clinic_data.check_in(db, expired, sent_at=SEPT + timedelta(hours=1), status="expired")
        for number in range(10, 15):
            add(db, clinic_id, f"C-{number}", SEPT + timedelta(days=2), 8, therapist=LEE)
        add(db, clinic_id, "C-1", OCT, 7, therapist=DANA)
        waiting = clinic_data.visit(db, clinic_id, "C-4", OCT, therapist=DANA)
        clinic_data.check_in(db, waiting, sent_at=OCT + timedelta(hours=1), first_name="Robin")
        test = clinic_data.visit(db, clinic_id, "test:dana@harbour.example",
                                 OCT + timedelta(days=30), therapist=("test", None))
        test_check_in = clinic_data.check_in(db, test, sent_at=OCT + timedelta(days=30),
                                             test=True)
        clinic_data.answer(db, test_check_in, 0, OCT + timedelta(days=30, hours=1))
        # Later bookings: C-1 20 days after October's visit; C-2 a cancelled one at 10 days
        # and a kept one at 75; Lee's C-10 at 40 days, C-11 at 5 days.
        for client, visit_end, days, status in (
                ("C-1", OCT, 20, "booked"), ("C-2", SEPT + timedelta(days=1), 10, "cancelled"),
                ("C-2", SEPT + timedelta(days=1), 75, "completed"),
                ("C-10", SEPT + timedelta(days=2), 40, "booked"),
                ("C-11", SEPT + timedelta(days=2), 5, "no_show")):
            clinic_data.visit(db, clinic_id, client, visit_end + timedelta(days=days, hours=1),
                              status=status)
    return clinic_id


def run(app, clinic_id, query, *args):
    with app.app_context(), database.session() as db:
        return query(db, db.get(Clinic, clinic_id), PERIOD, *args)


def test_response_rate_counts_by_the_month_sent_tests_left_out(app, history):
    assert run(app, history, figures.response_rate) == [
        {"month": "2026-09", "sent": 8, "answered": 7, "expired": 1},
        {"month": "2026-10", "sent": 2, "answered": 1, "expired": 0},
        {"month": "2026-11", "sent": 0, "answered": 0, "expired": 0},
    ]


def test_alliance_gives_each_months_median_and_bands(app, history):
    found = run(app, history, figures.alliance)
    assert [band["id"] for band in found["bands"]] == [
        "needs-attention", "some-concerns", "working-well"]
    assert found["months"] == [
        {"month": "2026-09", "answers": 7, "median": 80.0,
         "bands": {"needs-attention": 1, "some-concerns": 0, "working-well": 6}},
        {"month": "2026-10", "answers": 1, "median": 70.0,
         "bands": {"needs-attention": 0, "some-concerns": 1, "working-well": 0}},
        {"month": "2026-11", "answers": 0, "median": None,
         "bands": {"needs-attention": 0, "some-concerns": 0, "working-well": 0}},
    ]


def test_a_therapist_with_fewer_than_five_answers_gets_no_median(app, history):
    assert run(app, history, figures.by_therapist) == [
        {"therapist_id": "T-1", "name": "Dana", "answers": 3, "enough": False, "median": None},
        {"therapist_id": "T-2", "name": "Lee", "answers": 5, "enough": True, "median": 80.0},
    ]


def test_open_flags_name_the_clients_whose_latest_answer_dropped_or_is_low(app, history):
    flagged = run(app, history, figures.open_flags)
    assert [(row["client_id"], row["therapist"], row["overall"]) for row in flagged] == [
        ("C-1", "Dana", 70.0), ("C-2", "Dana", 30.0)]
    assert flagged[0]["codes"] == ["drop"]
    assert "20 points below" in flagged[0]["flags"][0]
    assert flagged[1]["codes"] == ["first_low"] or "first_low" in flagged[1]["codes"]


def test_retention_by_the_band_of_the_last_check_in(app, history):
    found = run(app, history, figures.retention, LATER)
    assert found["horizons"] == [30, 60, 90]
    table = {row["band"]: (row["clients"], {days: (cell["rebooked"], cell["known"])
                                            for days, cell in row["horizons"].items()})
             for row in found["bands"]}
    assert table == {
        "needs-attention": (1, {30: (0, 1), 60: (0, 1), 90: (1, 1)}),
        "some-concerns": (1, {30: (1, 1), 60: (1, 1), 90: (1, 1)}),
        "working-well": (5, {30: (1, 5), 60: (2, 5), 90: (2, 5)}),
    }
    working = next(row for row in found["bands"] if row["band"] == "working-well")
    assert [working["horizons"][days]["share"] for days in (30, 60, 90)] == [20, 40, 40]


def test_a_horizon_not_yet_passed_is_not_judged(app, history):
    soon = OCT + timedelta(days=45)
    found = run(app, history, figures.retention, soon)
    concerns = next(row for row in found["bands"] if row["band"] == "some-concerns")
    assert concerns["horizons"][30]["known"] == 1
    assert concerns["horizons"][60] == {"known": 0, "rebooked": 0, "share": None}


def test_months_back_ends_with_this_month():
    period = figures.months_back(6, "Europe/London", today=date(2026, 3, 15))
    assert period.months == ["2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"]
    assert period.end == datetime(2026, 4, 1, tzinfo=timezone.utc) - timedelta(hours=1)
