"""``/metrics`` scraped around one whole loop: webhook → email → answers → write-back,
and an expiry; every counter it names moves (plugin/metrics.py, plugin/web/metrics.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from plugin.pipeline import instruments, sweeper
from plugin.web import inbox
from tests.support.rapport import subprocess_env
from tests.support.survey import answer, answers_for, survey_path

TOKEN = "metrics-token-for-tests"
ROOT = Path(__file__).resolve().parents[2]


def scrape(web) -> dict[tuple, float]:
    page = web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200, page.status_code
    assert page.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(page.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return samples


def moved(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, *sorted(labels.items()))
    return after.get(key, 0) - before.get(key, 0)


def test_every_counter_moves_through_one_loop(app, web, generic_clinic, deliver_generic, drain,
                                              mailbox, callback_receiver):
    app.config["METRICS_TOKEN"] = TOKEN
    before = scrape(web)

    assert deliver_generic("appointment.completed").status_code == 202
    assert deliver_generic("appointment.completed", appointment_id="A-200", client_id="C-8",
                   email="kim@example.com").status_code == 202
    inbox.inbox(app).flush()  # the events' job queued
    queued = scrape(web)
    assert queued[("rapport_queue_jobs", ("queue", "rapport"), ("state", "queued"))] >= 1
    drain()
    assert len(mailbox.messages) == 2
    with app.app_context():
        instrument = instruments.get("rapport-checkin")
    sam = next(m for m in mailbox.messages if m["To"] == "sam@example.com")
    assert answer(web, survey_path(sam), answers_for(instrument)).status_code == 200
    drain()
    assert len(callback_receiver.received) == 1
    with app.app_context():  # a week and a day later, Kim has not answered
        sweeper.sweep(now=datetime.now(timezone.utc) + timedelta(days=8))
    after = scrape(web)

    assert moved(before, after, "rapport_events_received_total", platform="generic",
                 answer="202") == 2
    assert moved(before, after, "rapport_check_ins_total", event="sent") == 2
    assert moved(before, after, "rapport_check_ins_total", event="answered") == 1
    assert moved(before, after, "rapport_check_ins_total", event="expired") == 1
    assert moved(before, after, "rapport_write_backs_total", outcome="delivered") == 1
    for job in ("ingest_events", "send_check_in", "deliver_write_back", "sweep"):
        assert moved(before, after, "rapport_job_duration_seconds_count", job=job,
                     outcome="ok") >= 1, job
    assert ("rapport_queue_jobs", ("queue", "rapport-sends"), ("state", "scheduled")) in after


def test_metrics_need_the_token(app, web):
    assert web.get("/metrics").status_code == 404  # no token configured: no page
    app.config["METRICS_TOKEN"] = TOKEN
    refused = web.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert web.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert web.get("/metrics", headers={"Authorization": TOKEN}).status_code == 401
    assert web.get("/metrics", headers={
        "Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_the_workers_counts_reach_the_web_process(app, generic_clinic, deliver_generic, mailbox,
                                                  tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, a count made in a worker process is in the page
    another process serves."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    assert deliver_generic("appointment.completed").status_code == 202
    inbox.inbox(app).flush()
    env = {**subprocess_env(app, AUTO_MIGRATE="false", METRICS_TOKEN=TOKEN),
           "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    worker = subprocess.run([sys.executable, "-m", "plugin", "worker", "--burst"], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr[-2000:]
    assert len(mailbox.messages) == 1
    assert any(name.startswith("counter_") for name in os.listdir(folder))
    page = subprocess.run([sys.executable, "-c", (
        "from plugin import create_app\n"
        "client = create_app().test_client()\n"
        f"print(client.get('/metrics', headers={{'Authorization': 'Bearer {TOKEN}'}})"
        ".get_data(as_text=True))")], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=120)
    assert page.returncode == 0, page.stderr[-2000:]
    assert 'rapport_check_ins_total{event="sent"} 1.0' in page.stdout
    assert 'rapport_job_duration_seconds_count{job="send_check_in",outcome="ok"} 1.0' \
        in page.stdout
