"""Every job Rapport queues runs under a plain RQ worker (README: `rq worker-pool`), which
imports the job by name and calls it in a process with no Flask application context:
each must build its own from the environment (``plugin.runtime.job``)."""

from __future__ import annotations

import ast
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[1]


def queued_job_names() -> set[str]:
    """The ``plugin.jobs.*`` names Rapport's own code queues."""
    names = set()
    for path in [*ROOT.glob("plugin/*.py"), *ROOT.glob("handlers/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and node.value.startswith("plugin.jobs.")
                    and node.value.removeprefix("plugin.jobs.").isidentifier()):
                names.add(node.value.removeprefix("plugin.jobs."))
    return names


def test_every_queued_job_runs_without_an_app_context(app):
    names = queued_job_names()
    assert {"check_completion", "ingest_events", "send_invitation", "write_back"} <= names
    # Ids that name nothing: each job finds nothing to do and returns.
    calls = [f"jobs.{name}({'[999999]' if name == 'ingest_events' else '999999'})"
             for name in sorted(names)]
    script = "from plugin import jobs\n" + "\n".join(calls) + "\njobs.sweep()\n"
    result = subprocess.run([sys.executable, "-c", script], env=subprocess_env(app),
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_rq_cron_reads_the_queue_from_rapport_cfg(app, tmp_path):
    """`rq cron plugin.cron` schedules on the queue the workers take, set in rapport.cfg
    like every other setting (README: "Configuration")."""
    instance = tmp_path / "cron-instance"
    instance.mkdir()
    (instance / "rapport.cfg").write_text('QUEUE_NAME = "staging"\nSWEEP_INTERVAL_SECONDS = 30\n')
    env = subprocess_env(app, INSTANCE_PATH=str(instance))
    script = ("import plugin.cron\nfrom rq import cron\n"
              "print(sorted((d['func'].__name__, d['queue_name'], d['interval'])"
              " for d in cron._job_data_registry))")
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == (
        "[('refresh_tokens', 'staging', None), ('sweep', 'staging', 30)]")


def readme_worker_command() -> list[str]:
    """The `rq worker-pool` line of README's "Running in production", as words."""
    readme = (ROOT / "README.md").read_text()
    line = next(line for line in readme.splitlines() if line.startswith("rq worker-pool"))
    return shlex.split(line.partition("#")[0])


def test_readme_workers_fork_each_job_with_rapport_already_imported(app, redis_url):
    """RQ forks a work horse per job; a horse whose parent had not imported Rapport's jobs
    spends over a second importing them, for every job. The README's command loads them
    once, in each worker, before it forks."""
    from redis import Redis
    from rq import Queue

    connection = Redis.from_url(redis_url)
    queue = Queue(app.config["QUEUE_NAME"], connection=connection)
    probe = queue.enqueue("tests.rq_probe.rapport_jobs_imported")
    command = [part.replace("$RAPPORT_REDIS_URL", redis_url)
               for part in readme_worker_command()]
    assert command[:2] == ["rq", "worker-pool"]
    command = [str(Path(sys.executable).with_name("rq")), *command[1:], "--burst", "-n", "1"]
    result = subprocess.run(command, env=subprocess_env(app), cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    probe.refresh()
    assert probe.is_finished, result.stderr[-2000:]
    assert probe.return_value() is True
