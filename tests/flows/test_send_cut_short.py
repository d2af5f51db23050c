"""A check-in is never lost, and never sent twice, when its worker dies mid-send
(finding: a check-in can be lost in one narrow window). A real worker is killed while
the real mail server holds the exchange: at MAIL FROM the server provably never had the
message, so it is sent again; once the server has the whole message, it is not."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from plugin.store import database
from plugin.store.models import CheckIn
from plugin.web import inbox
from tests.support.clock import drainer, sweep_in
from tests.support.generic import event_body, webhook_path
from tests.support.generic import sign_generic as signed
from tests.support.rapport import subprocess_env
from tests.support.smtp_hold import HoldingSMTPServer


def descendants(pid: int) -> list[int]:
    """Every process started under ``pid``: RQ runs each job in a child of its own
    session, which a signal to the worker's process group does not reach."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, waiting = [], [pid]
    while waiting:
        for child in children.get(waiting.pop(), []):
            found.append(child)
            waiting.append(child)
    return found


def kill_the_worker_when_the_server_holds(app, server) -> None:
    """``rapport worker`` and the process running the job, killed outright (a machine
    lost, the OOM killer) while the mail server holds the exchange."""
    worker = subprocess.Popen([sys.executable, "-m", "plugin", "worker"],
                              env=subprocess_env(app), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert server.mailbox.reached.wait(60), "the worker never reached the mail server"
    finally:
        for pid in [worker.pid, *descendants(worker.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait()


def deliver_a_completed_visit(app, clinic) -> None:
    """One signed completion, acknowledged and stored (its jobs queued, none run)."""
    body = event_body()
    answer = app.test_client().post(webhook_path(clinic), data=body, headers=signed(body, clinic))
    assert answer.status_code == 202
    inbox.inbox(app).flush()


def check_in(app) -> CheckIn:
    with app.app_context(), database.session() as db:
        return db.scalar(select(CheckIn))


@pytest.mark.parametrize(("hold_at", "stage", "after_sweep"), [
    ("MAIL", "claimed", "sent"),        # the server never had it: sent again, once
    ("DATA", "data", "interrupted"),    # it may have it: never sent twice
])
def test_a_worker_killed_mid_send(app_factory, generic_clinic_factory, hold_at, stage, after_sweep):
    with HoldingSMTPServer(hold_at) as server:
        app = app_factory(SMTP_PORT=server.port)
        deliver_a_completed_visit(app, generic_clinic_factory())
        kill_the_worker_when_the_server_holds(app, server)
        cut_short = check_in(app)
        assert (cut_short.status, cut_short.smtp_stage) == ("sending", stage)

        server.mailbox.let_go.set()
        server.mailbox.hold_at = None
        sweep_in(app, minutes=10)
        drainer(app)()
        assert check_in(app).status == after_sweep
        # Held at DATA, the server had the whole message and took it once let go; held at
        # MAIL FROM it never had it, and the one sent again is the only one.
        assert len(server.mailbox.messages) == 1


def test_a_worker_held_up_until_the_sweeper_took_its_check_in_back_does_not_send_it(
        app_factory, generic_clinic_factory):
    """Not dead, only held up (the database locked from outside, a slow mail server) past
    ``SWEEP_AFTER_SECONDS``: the sweeper takes the check-in for cut short and schedules it
    again. The first worker, let go, must not complete its message (found by the fault
    matrix's database-locked scenario: a client emailed twice)."""
    with HoldingSMTPServer("MAIL") as server:
        app = app_factory(SMTP_PORT=server.port)
        deliver_a_completed_visit(app, generic_clinic_factory())
        seen = {}

        def sweep_while_the_worker_is_held():
            try:
                if server.mailbox.reached.wait(30):
                    seen["held"] = (check_in(app).status, check_in(app).smtp_stage)
                    sweep_in(app, minutes=10)
                    seen["swept"] = check_in(app).status
            finally:
                server.mailbox.hold_at = None
                server.mailbox.let_go.set()

        sweeping = threading.Thread(target=sweep_while_the_worker_is_held)
        sweeping.start()
        drainer(app)()  # ingests, sends (held at MAIL FROM), then the one queued again
        sweeping.join(30)

        assert seen == {"held": ("sending", "claimed"), "swept": "scheduled"}
        assert len(server.mailbox.messages) == 1  # the one sent again, and no other
        assert check_in(app).status == "sent"
