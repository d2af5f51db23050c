"""Ingest benchmark: signed webhooks into Rapport, against a bare baseline, same run.

Both endpoints are served by gunicorn on loopback with the same settings. The bare one
only verifies the Standard Webhooks signature and pushes the body to Redis; Rapport's
also finds the clinic, validates the body, stores it in the inbox and queues the job.
Every request carries a distinct webhook-id. Printed: throughput (closed loop, in
rounds that alternate between the two endpoints, so that a slower minute on a shared
machine weighs on both) and p50/p99 latency at fixed rates, each timed after a warm-up
second at that rate (the load generator opens its connections then, for both endpoints
alike), for both, their ratio round by round, and whether anything was lost.

    python bench/ingest.py [--requests 5000] [--rounds 3] [--rates 250,500,1000]
                           [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from statistics import median

import redis
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from load import Result, build_request, closed_loop, open_loop  # noqa: E402

from handlers import generic  # noqa: E402
from plugin.tasks.embedded_redis import EmbeddedRedis  # noqa: E402

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def body_for(index: int) -> bytes:
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
    return json.dumps({
        "type": "appointment.completed",
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "data": {"appointment": {"id": f"A-{index}", "start": (end - timedelta(hours=1))
                                 .isoformat(), "end": end.isoformat()},
                 "client": {"id": f"C-{index}", "email": f"client{index}@example.com",
                            "first_name": "Sam", "locale": "en"},
                 "therapist": {"id": "T-1", "name": "Dana"}},
    }).encode()


def signed_requests(port: int, path: str, secret: str, count: int, tag: str) -> list[bytes]:
    out = []
    for index in range(count):
        body = body_for(index)
        msg_id = f"msg_{tag}_{index}_{uuid.uuid4().hex}"
        headers = generic.sign(body, secret=secret, msg_id=msg_id)
        out.append(build_request(HOST, port, path, headers, body))
    return out


def gunicorn(app: str, port: int, env: dict, workers: int, threads: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "gunicorn", app, "--bind", f"{HOST}:{port}",
               "--workers", str(workers), "--worker-class", "gthread", "--threads",
               str(threads), "--keep-alive", "30", "--backlog", "2048", "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://{HOST}:{port}/", timeout=1)
            return process
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"gunicorn {app} did not start")


def cpu_seconds(process: subprocess.Popen) -> float:
    """CPU time used so far by gunicorn's master and its workers (Linux /proc)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [process.pid]
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def closed_round(name: str, port: int, path: str, secret: str, args,
                 server: subprocess.Popen, tag: str) -> Result:
    """One closed-loop round: ``args.requests`` requests, ``args.concurrency`` in flight."""
    batch = signed_requests(port, path, secret, args.requests, f"{name}{tag}")
    before, own_before = cpu_seconds(server), time.process_time()
    result = closed_loop(HOST, port, batch, args.concurrency)
    result.client_cpu = (time.process_time() - own_before) / args.requests
    time.sleep(0.5)  # let the inbox writer queue what it holds
    result.server_cpu = (cpu_seconds(server) - before) / args.requests
    return result


def paced(name: str, port: int, path: str, secret: str, args) -> dict[int, Result]:
    results = {}
    for rate in args.rates:
        warmup = int(rate * args.warmup)
        results[rate] = open_loop(HOST, port, signed_requests(
            port, path, secret, warmup + rate * args.seconds, f"{name}r{rate}"), rate, warmup)
    return results


def report(name: str, rounds: list[Result], rates: dict[int, Result]) -> str:
    cpu = median([r.server_cpu for r in rounds])
    lines = [f"{name:<8} closed loop: {median([r.throughput for r in rounds]):6.0f} req/s "
             f"(rounds: {', '.join(f'{r.throughput:.0f}' for r in rounds)}), "
             f"p50 {median([r.percentile(50) for r in rounds]) * 1000:.1f} ms, "
             f"p99 {median([r.percentile(99) for r in rounds]) * 1000:.1f} ms; server CPU "
             f"{cpu * 1e6:.0f} µs/req (load generator "
             f"{median([r.client_cpu for r in rounds]) * 1e6:.0f} µs/req)"]
    for rate, result in rates.items():
        lines.append(f"{'':<8} at {rate:>5}/s:  p50 {result.percentile(50) * 1000:8.1f} ms, "
                     f"p99 {result.percentile(99) * 1000:8.1f} ms")
    statuses: dict[int, int] = {}
    errors = 0
    for result in [*rounds, *rates.values()]:
        errors += result.errors
        for status, count in result.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    lines.append(f"{'':<8} answers {statuses}, connection errors {errors}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000,
                        help="requests in each closed-loop round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="closed-loop rounds per endpoint, alternating between them")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rates", type=lambda v: [int(r) for r in v.split(",")],
                        default=[250, 500, 1000], help="fixed arrival rates, req/s")
    parser.add_argument("--seconds", type=int, default=4, help="duration at each rate")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds at each rate before timing starts (connections open)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--redis-url", default=os.environ.get("RAPPORT_REDIS_URL"))
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
    embedded = None
    redis_url = args.redis_url or "redis://127.0.0.1:6379/12"
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        embedded = EmbeddedRedis(workdir / "redis", persist=False)
        redis_url = embedded.start()
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()

    env = {**os.environ, "RAPPORT_ENV": "production", "RAPPORT_INSTANCE_PATH": str(workdir),
           "RAPPORT_SECRET_KEY": "bench-secret-key-0123456789abcdef",
           "RAPPORT_BASE_URL": "http://127.0.0.1", "RAPPORT_REDIS_URL": redis_url,
           "RAPPORT_DATABASE_URL": args.database_url or f"sqlite:///{workdir / 'rapport.db'}",
           "PYTHONPATH": str(ROOT)}
    os.environ.update({k: v for k, v in env.items() if k.startswith("RAPPORT_")})
    from plugin import create_app
    from plugin.clinics import connecting, records
    from plugin.store.database import session

    app = create_app()
    with app.app_context():
        created = connecting.add(name="Bench Clinic", platform_name="generic",
                                 # Never called: no worker runs. Production takes https
                                 # callbacks to public hosts only; this one does not resolve.
                                 given={"callback_url": "https://callbacks.bench.invalid/"},
                                 timezone=None, language=None).shown
    secret = created["webhook_secret"]
    env.update(BARE_WEBHOOK_SECRET=secret, BARE_REDIS_URL=redis_url)

    print(f"Machine: {machine()}")
    database = env["RAPPORT_DATABASE_URL"].split(":")[0]
    print(f"gunicorn: {args.workers} workers × {args.threads} threads (gthread), loopback; "
          f"the load generator shares the machine. Database: {database}")
    endpoints = {"bare": ("bare_endpoint:app", "/"),
                 "rapport": ("wsgi:app", f"/webhooks/generic/{created['key']}")}
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    rounds: dict[str, list[Result]] = {name: [] for name in endpoints}
    rates: dict[str, dict[int, Result]] = {}
    bench_env = {**env, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}"}
    try:
        for name, (wsgi, _) in endpoints.items():
            port = free_port()
            servers[name] = gunicorn(wsgi, port, bench_env, args.workers, args.threads), port
        for name, (_, path) in endpoints.items():  # warm-up: connections, first imports
            closed_loop(HOST, servers[name][1], signed_requests(
                servers[name][1], path, secret, 200, f"{name}w"), args.concurrency)
        # The rounds alternate, so a slower minute on a shared machine weighs on both.
        for index in range(args.rounds):
            for name, (_, path) in endpoints.items():
                server, port = servers[name]
                rounds[name].append(closed_round(name, port, path, secret, args, server,
                                                 f"t{index}"))
        for name, (_, path) in endpoints.items():
            rates[name] = paced(name, servers[name][1], path, secret, args)
    finally:
        for server, _ in servers.values():
            stop(server)
    for name in endpoints:
        print(report(name, rounds[name], rates[name]))

    def acknowledged(name: str) -> int:
        return 200 + sum(r.statuses.get(202, 0) for r in [*rounds[name], *rates[name].values()])

    sent_bare, sent_rapport = acknowledged("bare"), acknowledged("rapport")
    with app.app_context(), session() as db:
        from sqlalchemy import delete, func, select

        from plugin.store.models import InboxEvent

        # Only this run's clinic: a PostgreSQL database may hold other runs' events.
        clinic = records.by_key(db, created["key"])
        stored = db.scalar(select(func.count(InboxEvent.id))
                           .where(InboxEvent.clinic_id == clinic.id))
        db.execute(delete(InboxEvent).where(InboxEvent.clinic_id == clinic.id))
        db.delete(clinic)
    from rq import Queue

    # Events are queued in batches: count the inbox ids the queued jobs carry.
    queued = sum(len(job.args[0]) for job in Queue("rapport", connection=connection).get_jobs())
    pushed = connection.llen("bare:webhooks")
    pairs = list(zip(rounds["bare"], rounds["rapport"], strict=True))
    throughput = [rapport.throughput / bare.throughput for bare, rapport in pairs]
    cpu = [bare.server_cpu / rapport.server_cpu for bare, rapport in pairs]
    top = max(args.rates)
    print(f"ratio    Rapport / bare, round by round: throughput "
          f"{', '.join(f'{x:.2f}' for x in throughput)} (median {median(throughput):.2f}, "
          f"target ≥ 0.50); server CPU per request "
          f"{', '.join(f'{x:.2f}' for x in cpu)} (median {median(cpu):.2f})")
    print(f"latency  Rapport p99 at {top}/s: {rates['rapport'][top].percentile(99) * 1000:.1f} ms "
          "(target ≤ 25 ms)")
    print(f"lost     bare: {sent_bare - pushed} of {sent_bare} acknowledged; "
          f"rapport: {sent_rapport - stored} of {sent_rapport} acknowledged not in the inbox, "
          f"{stored - queued} stored but not queued")
    connection.flushdb()
    if embedded:
        embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
