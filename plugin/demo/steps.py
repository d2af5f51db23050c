"""What every ``rapport demo`` shares: the mail catcher, servers on loopback, the steps
printed plainly, and the client's side (reading the email, answering the survey)."""

from __future__ import annotations

import logging
import re
import signal
import socket
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests
from aiosmtpd.controller import Controller
from flask import Flask
from rq.exceptions import StopRequested
from werkzeug.serving import make_server

from plugin import create_app
from plugin.tasks import worker as runner
from plugin.tasks.embedded_redis import EmbeddedRedis, redis_executable

DEMO_RULES = {"send_delay_minutes": 0, "window_start": "00:00", "window_end": "24:00"}


class MailCatcher:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


LOOPBACK = "127.0.0.1"


def serve(app, port: int, host: str = LOOPBACK):
    server = make_server(host, port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def reachable_address(host: str) -> str:
    """The address to put in links for a server bound to ``host``: for every interface
    (``0.0.0.0``), this machine's address on its local network, so that a phone on the
    same network can open them; loopback when there is none."""
    if host not in ("0.0.0.0", "::"):  # noqa: S104 - the value asked for, compared
        return host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            # No packet is sent: connecting a datagram socket only picks the route.
            probe.connect(("10.255.255.255", 1))
            return probe.getsockname()[0]
        except OSError:
            return LOOPBACK


class LateApp:
    """Lets a server bind its port before the app that needs that port in its config."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


def say(step: str, text: str = "") -> None:
    print(f"\n== {step}")
    for line in text.splitlines():
        print(f"   {line}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def show_email(message: EmailMessage) -> str:
    text = message.get_body(preferencelist=("plain",)).get_content().strip()
    headers = "\n".join(f"{name}: {message[name]}" for name in
                        ("From", "To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"))
    return f"{headers}\n\n{text}"


def survey_link(message: EmailMessage) -> str:
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"https?://\S+/s/[A-Za-z0-9_-]+(?=\s)", text).group(0)


def answer(link: str, instrument) -> requests.Response:
    """Fill in the survey over HTTP as a client's phone would."""
    session = requests.Session()
    page = session.get(link, timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    form = {"csrf_token": token,
            "comment": "Loved the session. Could we spend more time on my shoulders?"}
    first_subscale = instrument.items[0].subscale
    for item in instrument.items:
        high = instrument.scale.max if not item.reverse else instrument.scale.min
        middle = (instrument.scale.min + instrument.scale.max) // 2
        form[item.id] = str(middle if item.subscale == first_subscale else high)
    return session.post(link, data=form, timeout=10)



def port_or_free(port: int, host: str = LOOPBACK) -> int:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
            return port
        except OSError:
            return 0


def work_until_interrupted() -> None:
    """Run the jobs as they come, until Ctrl-C (or SIGTERM)."""
    stop = threading.Event()

    def stop_on_signals() -> None:
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())

    while not stop.is_set():
        try:
            # RQ's worker puts its own Ctrl-C handling in place while it runs jobs.
            runner.drain(forking=False)
        except (StopRequested, KeyboardInterrupt):
            break
        finally:
            stop_on_signals()
        stop.wait(0.5)
    print("\nStopped.")


@dataclass
class Services:
    """What a demo runs on: Redis, the mail catcher, and Rapport on a loopback port."""

    app: Flask
    base_url: str
    catcher: MailCatcher
    smtp_port: int


def quiet() -> None:
    """The steps are printed; the servers' own request logs would bury them."""
    for name in ("werkzeug", "mail.log", "alembic", "plugin", "rq"):
        logging.getLogger(name).setLevel(logging.WARNING)


def start_redis(workdir: Path, cleanup: list) -> str:
    redis_server = EmbeddedRedis(workdir / "redis", persist=False)
    say("1. Queue", f"Starting a private Redis server ({redis_executable()})\n"
                    f"on {redis_server.start()}")
    cleanup.append(redis_server.stop)
    return redis_server.url


def start_rapport(workdir: Path, redis_url: str, *, port: int, cleanup: list,
                  config: dict[str, Any] | None = None, host: str = LOOPBACK) -> Services:
    """The mail catcher, then Rapport (web app on ``host``:``port``, 0 for any port)
    configured for them; its links use an address others can reach when ``host`` is every
    interface."""
    catcher = MailCatcher()
    smtp_port = free_port()
    smtp = Controller(catcher, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    cleanup.append(smtp.stop)
    rapport_app = LateApp()
    rapport_server = serve(rapport_app, port, host)
    cleanup.append(rapport_server.shutdown)
    base_url = f"http://{reachable_address(host)}:{rapport_server.port}"
    app = create_app({
        "ENV": "development", "INSTANCE_PATH": str(workdir),
        "DATABASE_URL": f"sqlite:///{workdir / 'rapport.db'}",
        "REDIS_URL": redis_url, "BASE_URL": base_url,
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp_port,
        "MAIL_FROM": "Harbour Massage via Rapport <checkin@harbour.example>",
        **(config or {}),
    })
    rapport_app.app = app
    return Services(app=app, base_url=base_url, catcher=catcher, smtp_port=smtp_port)
