"""A real SMTP server (aiosmtpd) that can stop answering at a chosen step of the
exchange, the moment a worker is to be killed there."""

from __future__ import annotations

import asyncio
import threading

from aiosmtpd.controller import Controller

from tests.support.servers import Mailbox, free_port


class HoldingMailbox(Mailbox):
    """Holds at MAIL FROM (``hold_at = "MAIL"``) or once it has the whole message
    (``"DATA"``) until released; ``reached`` is set when a sender gets there."""

    def __init__(self, hold_at: str) -> None:
        super().__init__()
        self.hold_at = hold_at
        self.reached = threading.Event()
        self.let_go = threading.Event()

    async def _hold(self) -> None:
        self.reached.set()
        while not self.let_go.is_set():
            await asyncio.sleep(0.02)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        if self.hold_at == "MAIL":
            await self._hold()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        answer = await super().handle_DATA(server, session, envelope)  # kept: it has it
        if self.hold_at == "DATA":
            await self._hold()  # and does not say so yet
        return answer


class HoldingSMTPServer:
    def __init__(self, hold_at: str) -> None:
        self.mailbox = HoldingMailbox(hold_at)
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> HoldingSMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.mailbox.let_go.set()
        self.controller.stop()
