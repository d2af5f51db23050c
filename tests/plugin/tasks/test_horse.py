"""The worker runs job after job in one horse, and still handles a job that is killed
or outlives its timeout as RQ handles it (plugin/tasks/horse.py)."""

from __future__ import annotations

import os
import resource

import pytest
from rq import Queue, Retry
from rq.job import JobStatus

from plugin.tasks import worker
from plugin.tasks.horse import WarmHorse


def burst(app, redis_conn):
    with app.app_context():
        worker.BurstWorker([Queue("rapport", connection=redis_conn)],
                           connection=redis_conn).work(burst=True, logging_level="WARNING")


def pids(path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


def test_jobs_share_one_horse_and_not_the_workers_process(app, redis_conn, tmp_path):
    queue = Queue("rapport", connection=redis_conn)
    notes = tmp_path / "pids"
    jobs = [queue.enqueue("tests.support.worker_jobs.note_process", str(notes))
            for _ in range(3)]
    burst(app, redis_conn)
    assert [job.get_status() for job in jobs] == [JobStatus.FINISHED] * 3
    ran_in = pids(notes)
    assert len(set(ran_in)) == 1
    assert ran_in[0] != os.getpid()


def test_a_job_killed_mid_run_is_retried_and_the_worker_carries_on(app, redis_conn, tmp_path):
    queue = Queue("rapport", connection=redis_conn)
    before, marker, after = tmp_path / "before", tmp_path / "marker", tmp_path / "after"
    first = queue.enqueue("tests.support.worker_jobs.note_process", str(before))
    killed = queue.enqueue("tests.support.worker_jobs.die_once", str(marker),
                           retry=Retry(max=1))
    last = queue.enqueue("tests.support.worker_jobs.note_process", str(after))
    burst(app, redis_conn)

    assert first.get_status() == last.get_status() == JobStatus.FINISHED
    # Killed once (its horse died with it), then retried as RQ retries a dead horse's job.
    assert killed.get_status() == JobStatus.FINISHED
    killed.refresh()
    assert killed.retries_left == 0
    dead_horse, *rerun = pids(marker)
    assert pids(before) == [dead_horse]  # the job before it ran in the horse that died
    assert rerun and rerun[0] != dead_horse  # the retry, and the job after, in a new one
    assert pids(after) == rerun


def test_a_killed_job_without_retries_fails_as_a_dead_horse(app, redis_conn, tmp_path):
    queue = Queue("rapport", connection=redis_conn)
    killed = queue.enqueue("tests.support.worker_jobs.die_once", str(tmp_path / "marker"))
    after = queue.enqueue("tests.support.worker_jobs.note_process", str(tmp_path / "after"))
    burst(app, redis_conn)
    assert killed.get_status() == JobStatus.FAILED
    assert "Work-horse terminated unexpectedly" in killed.latest_result().exc_string
    assert after.get_status() == JobStatus.FINISHED


def test_a_job_past_its_timeout_is_stopped_and_the_horse_goes_on(app, redis_conn, tmp_path):
    queue = Queue("rapport", connection=redis_conn)
    slow = queue.enqueue("tests.support.worker_jobs.outlive_timeout", 30, job_timeout=1)
    after = queue.enqueue("tests.support.worker_jobs.note_process", str(tmp_path / "after"))
    burst(app, redis_conn)
    assert slow.get_status() == JobStatus.FAILED
    assert "JobTimeoutException" in slow.latest_result().exc_string
    assert after.get_status() == JobStatus.FINISHED


def test_the_horse_reads_its_orders_from_a_pipe_numbered_past_1023():
    """In a process holding many files or sockets the horse's pipe can be numbered past
    select.select's limit (1023): it still reads the next job's line."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1600:
        pytest.skip(f"this machine allows {hard} open files per process")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1600), hard))
    reading, writing = os.pipe()
    try:
        os.dup2(reading, 1500)
        os.write(writing, b'["job-1", "rapport", "execution-1"]\n')
        with os.fdopen(1500, "rb", buffering=0) as pipe:
            assert WarmHorse._next_order(pipe, os.getppid()) == \
                b'["job-1", "rapport", "execution-1"]\n'
    finally:
        os.close(reading)
        os.close(writing)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
