"""Real servers the tests talk to: SMTP (aiosmtpd), an HTTP callback receiver, and
Rapport itself on a real socket."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts; it can also hold or refuse mail."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse_with: deque[str] = deque()
        self.release = threading.Event()
        self.release.set()
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        if self.refuse_with:
            return self.refuse_with.popleft()
        # Held mail waits here without an answer, like a stalled mail server.
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.arrived:
            self.messages.append(message)
            self.arrived.notify_all()
        return "250 OK"

    def clear(self) -> None:
        self.messages.clear()
        self.refuse_with.clear()
        self.release.set()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SMTPServer:
    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CallbackReceiver:
    """A real HTTP server recording every request; answers can be scripted."""

    received: list[Received] = field(default_factory=list)
    answers: deque = field(default_factory=deque)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.port}/hooks/rapport"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.01}, daemon=True)

    def start(self) -> CallbackReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()

    def answer(self, status: int, headers: dict | None = None, times: int = 1,
               delay: float = 0) -> None:
        for _ in range(times):
            self.answers.append((status, headers or {}, delay))

    def clear(self) -> None:
        self.received.clear()
        self.answers.clear()

    def _app(self, environ, start_response):
        request = Request(environ)
        with self.arrived:
            self.received.append(
                Received(request.method, request.path, dict(request.headers), request.get_data())
            )
            self.arrived.notify_all()
        status, headers, delay = self.answers.popleft() if self.answers else (204, {}, 0)
        time.sleep(delay)
        return Response(b"", status=status, headers=headers)(environ, start_response)


class LiveServer:
    """A WSGI app on a real socket, in a thread."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01},
                         daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
