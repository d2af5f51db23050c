"""The fault matrix at CI size: each scenario of tests/support/fault_scenarios.py on
real processes (gunicorn, two `rapport worker`s, redis-server, aiosmtpd, a callback
receiver), on SQLite and on a PostgreSQL cluster of its own. Every scenario must end
with every acknowledged visit emailed once and every answer written back once.
``bench/faults.py`` runs the same scenarios larger and longer.

Marked slow: a scenario takes 5–15 s on the project's two-core machine (and starting a
stack, once per database, 8–14 s more), since it waits out the fault it makes on real
processes: a worker killed and started again, the mail server down and back, Redis
restarted empty, a retry's backoff. Faster would mean faking the processes."""

from __future__ import annotations

import pytest

from tests.support import private_postgres
from tests.support.fault_scenarios import SCENARIOS, run, table
from tests.support.fault_stack import Stack

VISITS = 6


@pytest.fixture(scope="module", params=[
    pytest.param("sqlite", marks=pytest.mark.xdist_group("faults-sqlite")),
    pytest.param("postgresql", marks=pytest.mark.xdist_group("faults-postgresql")),
])
def stack(request):
    if request.param == "postgresql" and (reason := private_postgres.unavailable()):
        pytest.skip(f"PostgreSQL fault scenarios: {reason}")
    with Stack(request.param) as started:
        yield started


@pytest.mark.slow
# Past the scenario's own deadline (240 s), so that a slow recovery ends in its row, lost
# or not, rather than in pytest's stop: a worker killed while it held RQ's scheduler lock
# leaves jobs queued for later waiting until the lock expires (61 s) and another worker
# asks for it again.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_nothing_is_lost_or_sent_twice(stack, scenario, capsys):
    if scenario.postgres_only and stack.postgres is None:
        pytest.skip(f"{scenario.name} is a PostgreSQL scenario")
    row = run(stack, scenario, VISITS)
    with capsys.disabled():
        print(f"\n{table([row])}")
    assert row.acked == VISITS, row
    assert (row.lost, row.unexpected, row.duplicate_emails) == (0, 0, 0), row
    assert (row.lost_notes, row.duplicate_callbacks) == (0, 0), row
    assert row.emails == row.callbacks - row.repeated_callbacks == row.expected > 0, row
