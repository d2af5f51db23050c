"""Scale benchmark: the whole pipeline under volume, with real processes.

A private ``redis-server`` (unix socket, temporary folder), SQLite in the same folder,
gunicorn serving Rapport (webhooks and survey pages), ``--workers`` worker processes
(``rapport worker`` each, or ``--pool``: README's ``rq worker-pool`` line), and in this
process an SMTP server (aiosmtpd) and a callback receiver for the write-backs. Two
generic clinics send at once, at any hour:

1. ``--answers`` + a few completed visits at the first clinic, their emails sent;
2. the workers suspended, ``--answers`` clients answer; resumed, the write-backs are
   timed (nothing else queued);
3. ``--appointments`` completed visits at the second clinic, signed webhooks through
   gunicorn: the time until every check-in is planned, then the emails a second; once
   a backlog of sends is queued, one more client of the first clinic answers, and the
   wait for that write-back is timed (``--probe-after``);
4. the bytes a survey page takes on the wire, with and without gzip;

and throughout, the workers' memory (their own RSS, and that of any process a worker
forks to run a job). Printed with the machine and its load.

    python bench/scale.py [--appointments 10000] [--answers 500] [--workers 2] [--pool]
                          [--send-seconds 600] [--probe-after 20]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from aiosmtpd.controller import Controller  # noqa: E402
from ingest import free_port, gunicorn, machine  # noqa: E402
from load import build_request, closed_loop  # noqa: E402

from handlers import generic  # noqa: E402
from plugin.tasks.embedded_redis import EmbeddedRedis  # noqa: E402

HOST = "127.0.0.1"
TOKEN = re.compile(rb"/s/([A-Za-z0-9_-]{20,})")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ALWAYS = {"send_delay_minutes": 0, "window_start": "00:00", "window_end": "24:00"}
PROBES = 5  # first-clinic visits kept unanswered for the write-back-behind-sends probe


class Sink:
    """An aiosmtpd handler that notes when each message arrived, for whom, and its link."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        found = TOKEN.search(envelope.content.replace(b"=\r\n", b""))
        with self.lock:
            self.arrivals.append((time.monotonic(), envelope.rcpt_tos[0],
                                  found.group(1) if found else b""))
        return "250 OK"

    def to(self, prefix: str) -> list[tuple[float, str, bytes]]:
        with self.lock:
            return [a for a in self.arrivals if a[1].startswith(prefix)]


class Callbacks(BaseHTTPRequestHandler):
    """The clinics' callback URL: notes when each write-back arrived, and for which visit."""

    arrivals: list[tuple[float, str]] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        appointment = json.loads(body)["data"]["appointment"]["id"]
        Callbacks.arrivals.append((time.monotonic(), appointment))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def body_for(prefix: str, index: int) -> bytes:
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
    return json.dumps({
        "type": "appointment.completed", "timestamp": datetime.now(timezone.utc).isoformat(),
        "data": {"appointment": {"id": f"{prefix}-A-{index}",
                                 "start": (end - timedelta(hours=1)).isoformat(),
                                 "end": end.isoformat()},
                 "client": {"id": f"{prefix}-C-{index}", "email": f"{prefix}{index}@example.com",
                            "first_name": "Sam", "locale": "en"},
                 "therapist": {"id": "T-1", "name": "Dana"}}}).encode()


def webhooks(port: int, clinic: dict, prefix: str, count: int) -> list[bytes]:
    path = f"/webhooks/generic/{clinic['key']}"
    out = []
    for index in range(count):
        body = body_for(prefix, index)
        headers = generic.sign(body, secret=clinic["webhook_secret"],
                               msg_id=f"msg_{prefix}_{index}_{uuid.uuid4().hex}")
        out.append(build_request(HOST, port, path, headers, body))
    return out


def wait_for(condition, timeout: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


class Memory(threading.Thread):
    """Samples the RSS of the worker processes and of what they fork, twice a second."""

    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.pids = pids
        self.worker_kb = 0
        self.job_kb = 0
        self.stopping = threading.Event()

    @staticmethod
    def rss_kb(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    @staticmethod
    def children(pid: int) -> list[int]:
        found = []
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                text = (task / "children").read_text().split()
                found += [int(child) for child in text]
        return found

    @staticmethod
    def spawned(pid: int) -> bool:
        """A process started afresh (the cron's, RQ's pool's): not a job's fork."""
        with contextlib.suppress(OSError):
            return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        return False

    def workers(self) -> list[int]:
        """The processes that take jobs: ``rapport worker``s, or the pool's workers."""
        found = []
        for pid in self.pids:
            found += self.children(pid) if self._is_pool(pid) else [pid]
        return found

    @staticmethod
    def _is_pool(pid: int) -> bool:
        with contextlib.suppress(OSError):
            return b"worker-pool" in Path(f"/proc/{pid}/cmdline").read_bytes()
        return False

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            for worker in self.workers():
                self.worker_kb = max(self.worker_kb, self.rss_kb(worker))
                for child in self.children(worker):
                    if not self.spawned(child):
                        self.job_kb = max(self.job_kb, self.rss_kb(child))


def answer(base: str, token: str, items: list[str]) -> int:
    with requests.Session() as session:
        page = session.get(f"{base}/s/{token}", timeout=30)
        form = {"csrf_token": CSRF.search(page.text).group(1),
                **{item: "5" for item in items}}
        return session.post(f"{base}/s/{token}", data=form, timeout=30).status_code


def count(database: Path, sql: str, *params) -> int:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return connection.execute(sql, params).fetchone()[0]
    finally:
        connection.close()


def main() -> int:  # noqa: PLR0915 - one run, step by step
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appointments", type=int, default=10_000)
    parser.add_argument("--answers", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", action="store_true",
                        help="run README's `rq worker-pool` line instead of `rapport worker`s")
    parser.add_argument("--send-seconds", type=float, default=600,
                        help="stop timing the emails after this long")
    parser.add_argument("--probe-after", type=float, default=20,
                        help="seconds into the sends before a client answers behind them")
    parser.add_argument("--direct", action="store_true",
                        help="store the second clinic's events in the inbox from this process, "
                             "as the receiver does, rather than through gunicorn: the time to "
                             "plan without the web tier's share of the machine")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    # Stopped (Ctrl-C, a time limit): the servers it started are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    workdir = Path(tempfile.mkdtemp(prefix="rapport-scale-"))
    embedded = EmbeddedRedis(workdir / "redis", persist=False)
    redis_url = embedded.start()
    database = workdir / "rapport.db"
    sink = Sink()
    smtp = Controller(sink, hostname=HOST, port=free_port())
    smtp.start()
    callbacks = ThreadingHTTPServer((HOST, 0), Callbacks)
    threading.Thread(target=callbacks.serve_forever, daemon=True).start()
    callback_url = f"http://{HOST}:{callbacks.server_port}/hooks"
    web_port = free_port()
    base = f"http://{HOST}:{web_port}"
    # Development, for the one thing it allows that production refuses: callbacks to the
    # receiver on this machine. The pages' rate limit is off: the 500 clients answer
    # from one address.
    env = {**os.environ, "RAPPORT_ENV": "development", "RAPPORT_INSTANCE_PATH": str(workdir),
           "RAPPORT_RATE_LIMIT_PAGES": "0",
           "RAPPORT_SECRET_KEY": "bench-secret-key-0123456789abcdef",
           "RAPPORT_BASE_URL": base, "RAPPORT_REDIS_URL": redis_url,
           "RAPPORT_DATABASE_URL": f"sqlite:///{database}",
           "RAPPORT_SMTP_HOST": HOST, "RAPPORT_SMTP_PORT": str(smtp.port),
           "RAPPORT_MAIL_FROM": "Bench Clinic <checkin@bench.example>",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}"}
    os.environ.update({k: v for k, v in env.items() if k.startswith("RAPPORT_")})

    from plugin import create_app
    from plugin.clinics import connecting
    from plugin.store.database import session
    from plugin.store.models import Clinic
    from questionnaires import SHIPPED_DIR, InstrumentRegistry

    app = create_app()
    clinics = {}
    with app.app_context():
        for name in ("answers", "sends"):
            added = connecting.add(name=f"Bench {name}", platform_name="generic",
                                   given={"callback_url": callback_url},
                                   timezone="UTC", language="en")
            with session() as db:
                db.get(Clinic, added.clinic_id).settings = {"timing": ALWAYS}
            clinics[name] = {**added.shown, "id": added.clinic_id}
    items = [item.id for item in InstrumentRegistry([Path(SHIPPED_DIR)])
             .get("rapport-checkin").items]

    print(f"Machine: {machine()}; load average at start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    kind = (f"`rq worker-pool` with {args.workers} workers" if args.pool
            else f"{args.workers} × `rapport worker`")
    print(f"Workers: {kind}; gunicorn 2 × 8 threads; SQLite; private redis-server on a "
          "unix socket; SMTP and the callback receiver in this process")
    processes = []
    results: dict[str, str] = {}
    logs = [open(workdir / f"worker-{n}.log", "w") for n in range(args.workers)]  # noqa: SIM115
    try:
        server = gunicorn("wsgi:app", web_port, env, 2, 8)
        processes.append(server)
        if args.pool:
            rq = str(Path(sys.executable).with_name("rq"))
            command = [rq, "worker-pool", *queue_names(app), "-n", str(args.workers),
                       "--url", redis_url, "-c", "plugin.tasks.rq_settings",
                       "-w", "plugin.tasks.worker.RapportWorker"]
            commands = [command]
        else:
            commands = [[sys.executable, "-m", "plugin", "worker"]] * args.workers
        for number, command in enumerate(commands):
            processes.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=logs[number],
                                              stderr=subprocess.STDOUT,
                                              start_new_session=True))
        memory = Memory([p.pid for p in processes[1:]])
        memory.start()
        from redis import Redis
        from rq.suspension import resume, suspend

        redis = Redis.from_url(redis_url)

        # 1. The first clinic's visits, their emails sent.
        wanted = args.answers + PROBES
        started = time.monotonic()
        closed_loop(HOST, web_port, webhooks(web_port, clinics["answers"], "w", wanted), 32)
        if not wait_for(lambda: len(sink.to("w")) >= wanted, 1800, 0.5):
            raise SystemExit(f"only {len(sink.to('w'))} of {wanted} first emails arrived")
        sent = sink.to("w")
        results["warm-up"] = (f"{wanted} visits to {wanted} emails in "
                              f"{sent[-1][0] - started:.1f} s")
        tokens = [token.decode() for _, _, token in sent]

        # 2. The answers, then their write-backs with nothing else queued.
        suspend(redis)
        time.sleep(2)  # a worker finishes the job it holds
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda t: answer(base, t, items), tokens[:args.answers]))
        assert statuses.count(200) == args.answers, statuses
        resumed = time.monotonic()
        resume(redis)
        if not wait_for(lambda: len(Callbacks.arrivals) >= args.answers, 1800, 0.2):
            raise SystemExit(f"only {len(Callbacks.arrivals)} write-backs arrived")
        last = Callbacks.arrivals[args.answers - 1][0]
        results["write-backs"] = (f"{args.answers / (last - resumed):.1f}/s "
                                  f"({args.answers} in {last - resumed:.1f} s)")

        # 3. The second clinic's visits: planned, then sent, a write-back behind them.
        started = time.monotonic()
        if args.direct:
            accepted = store_directly(app, clinics["sends"], "s", args.appointments)
        else:
            posted = closed_loop(HOST, web_port, webhooks(web_port, clinics["sends"], "s",
                                                          args.appointments), 64)
            accepted = posted.statuses.get(202, 0)
        posted_in = time.monotonic() - started
        planned_sql = "SELECT count(*) FROM check_ins WHERE clinic_id = ?"
        wait_for(lambda: count(database, planned_sql, clinics["sends"]["id"]) >= accepted,
                 1800, 0.5)
        planned_in = time.monotonic() - started
        results["ingest"] = (f"{accepted} {'events stored' if args.direct else 'webhooks accepted'}"
                             f" in {posted_in:.1f} s ({accepted / posted_in:.0f}/s)")
        results["planned"] = f"{accepted} check-ins planned {planned_in:.1f} s after the first"
        probe_token, probe_at, probe_wait = tokens[args.answers], None, None
        first_send = None
        deadline = time.monotonic() + args.send_seconds
        while time.monotonic() < deadline:
            sends = sink.to("s")
            if sends and first_send is None:
                first_send = sends[0][0]
            if probe_at is None and first_send and time.monotonic() - first_send >= \
                    args.probe_after:
                backlog = accepted - len(sends)
                assert answer(base, probe_token, items) == 200
                probe_at = time.monotonic()
            if probe_at and probe_wait is None and len(Callbacks.arrivals) > args.answers:
                probe_wait = Callbacks.arrivals[args.answers][0] - probe_at
            if len(sends) >= accepted and (probe_wait is not None or probe_at is None):
                break
            time.sleep(0.2)
        sends = sink.to("s")
        if sends:
            span = sends[-1][0] - sends[0][0]
            rate = (len(sends) - 1) / span if span else 0
            results["emails"] = (f"{rate:.1f}/s ({len(sends)} of {accepted} sent, "
                                 f"{span:.0f} s from the first to the last)")
        if probe_at is None:
            results["write-back behind sends"] = "not measured (the sends ended first)"
        elif probe_wait is None:
            results["write-back behind sends"] = (
                f"> {time.monotonic() - probe_at:.0f} s (not delivered by the end; "
                f"{backlog} sends were waiting when the client answered)")
        else:
            results["write-back behind sends"] = (
                f"{probe_wait:.2f} s from the answer to the callback, with {backlog} sends "
                "waiting when the client answered")

        # 4. A survey page on the wire.
        page_token = tokens[args.answers + 1]
        plain = requests.get(f"{base}/s/{page_token}", headers={"Accept-Encoding": "identity"},
                             stream=True, timeout=30)
        zipped = requests.get(f"{base}/s/{page_token}", headers={"Accept-Encoding": "gzip"},
                              stream=True, timeout=30)
        css = requests.get(f"{base}/static/rapport.css", headers={"Accept-Encoding": "gzip"},
                           stream=True, timeout=30)
        on_wire = [len(r.raw.read(decode_content=False)) for r in (plain, zipped, css)]
        results["survey page"] = (f"{on_wire[1] / 1024:.1f} KB transferred with gzip "
                                  f"({zipped.headers.get('Content-Encoding') or 'not compressed'}"
                                  f"; {on_wire[0] / 1024:.1f} KB without); its stylesheet "
                                  f"{on_wire[2] / 1024:.1f} KB")
        memory.stopping.set()
        memory.join()
        results["worker RSS"] = (f"{memory.worker_kb / 1024:.0f} MB; a process forked for "
                                 f"a job: {memory.job_kb / 1024:.0f} MB at most"
                                 if memory.job_kb else
                                 f"{memory.worker_kb / 1024:.0f} MB (no process per job)")
    finally:
        for process in reversed(processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        smtp.stop()
        callbacks.shutdown()
        embedded.stop()
        for log in logs:
            log.close()
        for name, value in results.items():
            print(f"{name:<24} {value}")
        print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def store_directly(app, clinic: dict, prefix: str, count: int) -> int:
    """Store ``count`` completed visits in the inbox as the receiver does (parsed, kept,
    queued in batches by the inbox's own threads), from 16 threads; how many stored."""
    from handlers import platform as platform_named
    from handlers.base import InboundRequest, event_to_dict
    from plugin.web import inbox

    platform = platform_named("generic")
    writer = inbox.inbox(app)

    def store(index: int) -> bool:
        body = body_for(prefix, index)
        inbound = InboundRequest(body=body, headers={"content-type": "application/json"})
        events = [event_to_dict(event) for event in platform.parse(inbound)]
        with app.app_context():
            return writer.store(clinic_id=clinic["id"], delivery_id=f"{prefix}-{index}",
                                body=body, headers={}, events=events) is not None

    with ThreadPoolExecutor(16) as pool:
        stored = sum(pool.map(store, range(count)))
    writer.flush()
    return stored


def queue_names(app) -> list[str]:
    """The queues a worker takes, most urgent first (one, before there were two)."""
    from plugin.tasks import queue

    names = getattr(queue, "queue_names", None)
    return names(app.config["QUEUE_NAME"]) if names else [app.config["QUEUE_NAME"]]


if __name__ == "__main__":
    sys.exit(main())
