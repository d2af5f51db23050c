"""Rapport as it runs in production, in real processes, for the fault matrix.

A private ``redis-server`` (restartable, nothing kept), SQLite in a temporary folder or
a private PostgreSQL cluster (restartable), gunicorn with the README's production line
(``asgi:app``, uvicorn's worker), supervised ``rapport worker`` processes (restarted
when they exit, as systemd would), and in this process an SMTP server (aiosmtpd) that
can be taken down and a callback receiver whose answers can be scripted. The clinics'
platform is the generic one: signed webhooks in, signed callbacks out.

The stack counts what the outside world sees: the emails each address received and the
callbacks each appointment's write-back delivered (and which of them were accepted).
Its temporary folder (logs, database) is removed at the end unless RAPPORT_FAULTS_KEEP
is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from aiosmtpd.controller import Controller

from handlers import generic
from plugin.tasks.embedded_redis import EmbeddedRedis
from tests.support.private_postgres import PrivatePostgres
from tests.support.rapport import ROOT
from tests.support.servers import free_port

HOST = "127.0.0.1"
TOKEN = re.compile(rb"/s/([A-Za-z0-9_-]{20,})")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CHOICE = re.compile(r'type="radio" name="([^"]+)" value="(\d+)"')
ALWAYS = {"send_delay_minutes": 0, "window_start": "00:00", "window_end": "24:00"}


class Sink:
    """The mail server's handler: every message accepted, by recipient, with its link.

    ``delay`` makes it slow, half at RCPT (before the message) and half after the
    message's ending "." (before it answers). Like a mail server that queues what it
    received (Postfix, Exim), it keeps a whole message even if the sender vanishes
    before the answer: what a sender that died there cannot know (Rapport then marks the
    check-in "interrupted" and never sends it again; docs/operations.md)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[str, str]] = []
        self.delay = 0.0  # seconds each message takes to be taken: a slow mail server

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        await asyncio.sleep(self.delay / 2)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        found = TOKEN.search(envelope.content.replace(b"=\r\n", b""))
        with self.lock:
            self.received.append((envelope.rcpt_tos[0], found.group(1).decode() if found else ""))
        await asyncio.sleep(self.delay / 2)
        return "250 OK"

    def to(self, prefix: str) -> list[tuple[str, str]]:
        with self.lock:
            return [r for r in self.received if r[0].startswith(prefix)]


class Callbacks(ThreadingHTTPServer):
    """The clinics' callback URL. While ``refusing`` holds a status, every write-back is
    answered with it (and ``Retry-After: 1``); otherwise accepted with 204."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((HOST, 0), _CallbackHandler)
        self.lock = threading.Lock()
        self.accepted: list[tuple[str, str]] = []  # (appointment id, webhook id)
        self.refused = 0
        self.refusing: int | None = None
        self.delay = 0.0  # seconds before each answer: a slow receiver
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_port}/hooks"

    def for_prefix(self, prefix: str) -> list[tuple[str, str]]:
        with self.lock:
            return [a for a in self.accepted if a[0].startswith(prefix)]


class _CallbackHandler(BaseHTTPRequestHandler):
    server: Callbacks

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(self.server.delay)
        refusing = self.server.refusing
        if refusing:
            with self.server.lock:
                self.server.refused += 1
            self.send_response(refusing)
            self.send_header("Retry-After", "1")
            self.end_headers()
            return
        appointment = json.loads(body)["data"]["appointment"]["id"]
        with self.server.lock:
            self.server.accepted.append((appointment, self.headers.get("Webhook-Id", "")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class Workers(threading.Thread):
    """``count`` ``rapport worker`` processes, each started again when it exits."""

    def __init__(self, env: dict, count: int, logs: Path) -> None:
        super().__init__(daemon=True)
        self.env, self.logs = env, logs
        self.processes: list[subprocess.Popen | None] = [None] * count
        self.restarts = 0
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        for slot in range(count):
            self._start(slot)

    def _start(self, slot: int) -> None:
        with open(self.logs / f"worker-{slot}.log", "a") as log:
            self.processes[slot] = subprocess.Popen(
                [sys.executable, "-m", "plugin", "worker"], env=self.env, cwd=ROOT,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            with self.lock:
                for slot, process in enumerate(self.processes):
                    if process is not None and process.poll() is not None:
                        self.restarts += 1
                        self._start(slot)

    def kill(self, slot: int = 0) -> None:
        """SIGKILL a worker and all it runs (its horse and its cron), as the OOM killer
        or a lost machine would; it is started again."""
        process = self.processes[slot]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in _children_groups(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _children_groups(pid: int) -> list[int]:
    """The work horse runs in a process group of its own (as RQ's): found by its parent."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


class Stack:
    """Everything Rapport needs, started; ``with Stack(...) as stack:``."""

    def __init__(self, database: str = "sqlite", workers: int = 2, *,
                 retry_intervals: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="rapport-faults-"))
        self.database_kind = database
        self.worker_count = workers
        self.retry_intervals = list(retry_intervals)
        self.postgres: PrivatePostgres | None = None

    # --- starting and stopping -------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        self.redis = EmbeddedRedis(self.folder / "redis", persist=False)
        redis_url = self.redis.start()
        if self.database_kind == "postgresql":
            self.postgres = PrivatePostgres(self.folder / "postgres")
            self.database_url = self.postgres.start()
        else:
            self.database_url = f"sqlite:///{self.folder / 'rapport.db'}"
        self.sink = Sink()
        self.smtp_port = free_port()
        self.smtp = self._smtp()
        self.callbacks = Callbacks()
        self.web_port = free_port()
        self.base = f"http://{HOST}:{self.web_port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")},
            "RAPPORT_ENV": "development",  # callbacks to this machine's receiver
            "RAPPORT_SECRET_KEY": "faults-secret-key-0123456789abcdef",
            "RAPPORT_INSTANCE_PATH": str(self.folder / "instance"),
            "RAPPORT_BASE_URL": self.base, "RAPPORT_REDIS_URL": redis_url,
            "RAPPORT_DATABASE_URL": self.database_url,
            "RAPPORT_SMTP_HOST": HOST, "RAPPORT_SMTP_PORT": str(self.smtp_port),
            "RAPPORT_SMTP_TIMEOUT": "5",
            "RAPPORT_MAIL_FROM": "Faults Clinic <checkin@faults.example>",
            "RAPPORT_JOB_RETRY_INTERVALS": json.dumps(self.retry_intervals),
            "RAPPORT_WRITE_BACK_BACKOFF_SECONDS": "1",
            "RAPPORT_SWEEP_INTERVAL_SECONDS": "2",
            "RAPPORT_SWEEP_AFTER_SECONDS": "6",
            "RAPPORT_RATE_LIMIT_PAGES": "0",
            "PYTHONPATH": str(ROOT),
        }
        from plugin import create_app

        self.app = create_app({k.removeprefix("RAPPORT_"): v for k, v in self.env.items()
                               if k.startswith("RAPPORT_")})
        self.app.extensions["rapport.engine"].dispose()
        with open(self.folder / "gunicorn.log", "w") as log:  # the child keeps its own copy
            self.gunicorn = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "asgi:app", "-c",
                 "python:plugin.web.gunicorn_config", "--workers", "2", "--worker-class",
                 "uvicorn_worker.UvicornWorker", "--bind", f"{HOST}:{self.web_port}",
                 "--log-level", "warning"],
                env=self.env, cwd=ROOT, start_new_session=True, stdout=log,
                stderr=subprocess.STDOUT)
        self._wait_for_web()
        self.workers = Workers(self.env, self.worker_count, self.folder)
        self.workers.start()
        self._wait_for_workers()

    def __exit__(self, *exc) -> None:
        workers = getattr(self, "workers", None)
        if workers:
            workers.stop()
        server = getattr(self, "gunicorn", None)
        if server:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        if getattr(self, "smtp", None):
            with contextlib.suppress(Exception):
                self.smtp.stop()
        if getattr(self, "callbacks", None):
            self.callbacks.shutdown()
        if getattr(self, "redis", None):
            self.redis.stop()
        if self.postgres:
            self.postgres.stop()
        if not os.environ.get("RAPPORT_FAULTS_KEEP"):
            shutil.rmtree(self.folder, ignore_errors=True)

    def _smtp(self) -> Controller:
        controller = Controller(self.sink, hostname=HOST, port=self.smtp_port)
        controller.start()
        return controller

    def _wait_for_web(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer; see {self.folder / 'gunicorn.log'}")

    def _wait_for_workers(self) -> None:
        from redis import Redis
        from rq import Worker

        connection = Redis.from_url(self.env["RAPPORT_REDIS_URL"])
        deadline = time.monotonic() + 60
        while len(Worker.all(connection=connection)) < self.worker_count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not start; see {self.folder}/worker-*.log")
            time.sleep(0.2)

    # --- faults ----------------------------------------------------------------------

    def smtp_down(self) -> None:
        self.smtp.stop()

    def smtp_up(self) -> None:
        self.smtp = self._smtp()

    def restart_redis_empty(self) -> None:
        self.redis.stop()
        self.redis.start()

    # --- the world outside -----------------------------------------------------------

    def add_clinic(self, name: str) -> dict:
        from plugin.clinics import connecting
        from plugin.store.database import session
        from plugin.store.models import Clinic

        with self.app.app_context():
            added = connecting.add(name=name, platform_name="generic",
                                   given={"callback_url": self.callbacks.url},
                                   timezone="UTC", language="en")
            with session() as db:
                db.get(Clinic, added.clinic_id).settings = {"timing": ALWAYS}
        self.app.extensions["rapport.engine"].dispose()
        return {**added.shown, "id": added.clinic_id}

    def deliver(self, clinic: dict, body: bytes, msg_id: str, attempts: int = 30) -> bool:
        """POST a signed webhook as a platform does: again after an error or no answer
        (with the same id), until it is acknowledged. True once a 2xx came back."""
        headers = generic.sign(body, secret=clinic["webhook_secret"], msg_id=msg_id)
        headers["Content-Type"] = "application/json"
        for attempt in range(attempts):
            with contextlib.suppress(requests.RequestException):
                answer = requests.post(f"{self.base}/webhooks/generic/{clinic['key']}",
                                       data=body, headers=headers, timeout=10)
                if answer.status_code < 300:
                    return True
                if answer.status_code < 500 and answer.status_code not in (408, 429):
                    return False  # refused for good: a platform stops here
            time.sleep(min(0.5 * (attempt + 1), 3))
        return False

    def answer(self, token: str) -> bool:
        """A client answers every item with the highest choice; True once saved."""
        for attempt in range(30):
            with contextlib.suppress(requests.RequestException), requests.Session() as web:
                page = web.get(f"{self.base}/s/{token}", timeout=10)
                if page.status_code == 200 and CSRF.search(page.text):
                    choices: dict[str, int] = {}
                    for item, value in CHOICE.findall(page.text):
                        choices[item] = max(choices.get(item, 0), int(value))
                    form = {"csrf_token": CSRF.search(page.text).group(1),
                            **{item: str(value) for item, value in choices.items()}}
                    if web.post(f"{self.base}/s/{token}", data=form,
                                timeout=10).status_code == 200:
                        return True
            time.sleep(min(0.5 * (attempt + 1), 3))
        return False

    def emails(self, prefix: str) -> Counter:
        return Counter(address for address, _ in self.sink.to(prefix))

    def tokens(self, prefix: str) -> dict[str, str]:
        return {address: token for address, token in self.sink.to(prefix)}

    def notes(self, prefix: str) -> dict[str, list[str]]:
        """Per appointment, the webhook ids of the write-backs the receiver accepted."""
        found: dict[str, list[str]] = defaultdict(list)
        for appointment, webhook_id in self.callbacks.for_prefix(prefix):
            found[appointment].append(webhook_id)
        return found
