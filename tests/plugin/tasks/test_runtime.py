"""Every job Rapport queues runs under a plain RQ worker (README: `rq worker-pool`), which
imports the job by name and calls it in a process with no Flask application context:
each must build its own from the environment (``plugin.runtime.job``)."""

from __future__ import annotations

import ast
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.rapport import ROOT, subprocess_env


def rapport_jobs() -> list[tuple[str, str, int]]:
    """Every function Rapport's code marks as a job (``@job``): its module, its name and
    how many arguments it takes."""
    found = []
    for path in ROOT.glob("plugin/**/*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(decorator, ast.Name) and decorator.id == "job"
                    for decorator in node.decorator_list):
                required = len(node.args.args) - len(node.args.defaults)
                found.append((module, node.name, required))
    return found


def test_every_queued_job_runs_without_an_app_context(app):
    jobs = rapport_jobs()
    assert {"check_completion", "ingest_events", "send_check_in", "deliver_write_back",
            "sweep", "refresh_tokens"} <= {name for _, name, _ in jobs}
    # Ids that name nothing: each job finds nothing to do and returns.
    lines = []
    for module, name, required in sorted(jobs):
        argument = "" if not required else "[999999]" if name == "ingest_events" else "999999"
        lines += [f"import {module}", f"{module}.{name}({argument})"]
    result = subprocess.run([sys.executable, "-c", "\n".join(lines)], env=subprocess_env(app),
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_rq_cron_reads_the_queue_from_rapport_cfg(app, tmp_path):
    """`rq cron plugin.cron` schedules on the queue the workers take, set in rapport.cfg
    like every other setting (README: "Configuration")."""
    instance = tmp_path / "cron-instance"
    instance.mkdir()
    (instance / "rapport.cfg").write_text('QUEUE_NAME = "staging"\nSWEEP_INTERVAL_SECONDS = 30\n')
    env = subprocess_env(app, INSTANCE_PATH=str(instance))
    script = ("import plugin.tasks.cron\nfrom rq import cron\n"
              "print(sorted((d['func'].__name__, d['queue_name'], d['interval'])"
              " for d in cron._job_data_registry))")
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == (
        "[('alert_admins', 'staging', None), ('poll_due', 'staging', 60), "
        "('refresh_tokens', 'staging', None), "
        "('sweep', 'staging', 30)]")


def readme_worker_command() -> list[str]:
    """The `rq worker-pool` line of README's "Running in production", as words."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(number for number, line in enumerate(lines) if line.startswith("rq worker-pool"))
    words = []
    for line in lines[start:]:
        words += shlex.split(line.partition("#")[0].rstrip().removesuffix("\\"))
        if not line.partition("#")[0].rstrip().endswith("\\"):
            return words
    return words


def test_readme_workers_fork_each_job_with_rapport_already_imported(app, redis_url):
    """RQ forks a work horse per job; a horse whose parent had not imported Rapport's jobs
    spends over a second importing them, for every job. The README's command loads them
    once, in each worker, before it forks."""
    from redis import Redis
    from rq import Queue

    connection = Redis.from_url(redis_url)
    queue = Queue(app.config["QUEUE_NAME"], connection=connection)
    probe = queue.enqueue("tests.support.rq_probe.rapport_jobs_imported")
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
