"""64 slow clients do not stop Rapport (finding: slow clients take the service down).

Real gunicorn on loopback, as the README runs it in production (``asgi:app`` with the
uvicorn worker): 32 clients send their headers a few bytes at a time and never finish,
32 send their headers and then a body that never arrives. Meanwhile ``/healthz`` and a
signed webhook are answered at once. A threaded worker, the kind the README used before
(it had 2 × 8 threads; here 1 × 16, so that how the kernel shares the slow clients out
between two processes cannot leave one of them free), stops answering under the same
load: shown too, as the reason for the change.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.generic import event_body, webhook_path
from tests.support.generic import sign_generic as signed
from tests.support.rapport import subprocess_env
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
SLOW = 64


def gunicorn(app, port: int, *arguments: str, workers: int = 2) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *arguments, "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--log-level", "warning", "--chdir", str(ROOT)],
        env=subprocess_env(app, AUTO_MIGRATE="false"), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                return server
        time.sleep(0.2)
    server.kill()
    raise AssertionError("gunicorn did not start")


def slow_clients(port: int, generic_clinic: dict) -> list[socket.socket]:
    """Half stop inside their headers, half inside their body; none ever finishes."""
    opened = []
    for number in range(SLOW):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if number % 2:
            sock.sendall(f"POST {webhook_path(generic_clinic)} HTTP/1.1\r\nHost: x\r\n".encode())
        else:
            sock.sendall(f"POST {webhook_path(generic_clinic)} HTTP/1.1\r\nHost: x\r\n"
                         "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
                         '{"type": '.encode())
        opened.append(sock)
    time.sleep(1)  # every one taken in by the server, on a busy machine too
    return opened


def still_answers(port: int, generic_clinic: dict) -> tuple[int, int]:
    health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=3).status_code
    body = event_body()
    webhook = requests.post(f"http://127.0.0.1:{port}{webhook_path(generic_clinic)}", data=body,
                            headers=signed(body, generic_clinic), timeout=3).status_code
    return health, webhook


@pytest.fixture
def served(app, generic_clinic):
    servers, sockets = [], []

    def serve(*arguments, workers: int = 2):
        port = free_port()
        servers.append(gunicorn(app, port, *arguments, workers=workers))
        sockets.extend(slow_clients(port, generic_clinic))
        return port

    yield serve
    for sock in sockets:
        sock.close()
    for server in servers:
        server.terminate()
        server.wait(10)


def test_slow_clients_do_not_stop_the_production_front_door(served, generic_clinic):
    port = served("asgi:app", "--worker-class", "uvicorn_worker.UvicornWorker")
    assert still_answers(port, generic_clinic) == (200, 202)


def test_they_stop_the_threaded_worker_the_readme_used_before(served, generic_clinic):
    port = served("wsgi:app", "--worker-class", "gthread", "--threads", "16", workers=1)
    with pytest.raises(requests.Timeout):
        still_answers(port, generic_clinic)
