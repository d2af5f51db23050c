"""A client answering, for a clinic with any callback URL (stored as given, the way a
DNS answer changed after the URL was checked would leave it), and a raw HTTP receiver
whose answer the test writes byte for byte."""

from __future__ import annotations

import re
import socket
import threading

from plugin.clinics import records
from plugin.pipeline import instruments
from plugin.store import database
from plugin.tasks import worker
from tests.support.generic import event_body, generic_credentials
from tests.support.generic import sign_generic as signed
from tests.support.survey import answer, answers_for, survey_path


def answered_with_callback(app_factory, mailbox, callback_url: str, **settings):
    """An app whose generic clinic's callback is ``callback_url``, once its client has
    answered and the write-back has been tried; the app and the clinic's key."""
    app = app_factory(**settings)
    with app.app_context(), database.session() as db:
        credentials = generic_credentials("https://x.example/")
        credentials["callback_url"] = callback_url
        created = records.create(db, name="Harbour Massage", platform="generic",
                                 credentials=credentials, settings={"timing": {
                                     "send_delay_minutes": 0, "window_start": "00:00",
                                     "window_end": "24:00"}})
        clinic = {"key": created.clinic.key,
                  "webhook_secret": credentials["inbound_secrets"][0],
                  "callback_secret": credentials["outbound_secret"]}
    client = app.test_client()
    body = event_body()
    assert client.post(f"/webhooks/generic/{clinic['key']}", data=body,
                       headers=signed(body, clinic)).status_code == 202
    with app.app_context():
        worker.drain(forking=False)
    with app.app_context():
        instrument = instruments.get("rapport-checkin")
    answer(client, survey_path(mailbox.messages[-1]), answers_for(instrument))
    with app.app_context():
        worker.drain(forking=False, wait_for_scheduled=5)
    return app, clinic


class RawAnswers:
    """A receiver that reads each request whole, then writes ``head`` and ``body`` (in
    chunks, counting what the caller took before it hung up)."""

    def __init__(self, head: bytes, body: bytes = b"", chunk: int = 65536) -> None:
        self.head, self.body, self.chunk = head, body, chunk
        self.requests: list[bytes] = []
        self.sent = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                received = b""
                while b"\r\n\r\n" not in received:
                    received += connection.recv(65536)
                head, _, body = received.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                while len(body) < length:
                    body += connection.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                try:
                    connection.sendall(self.head)
                    for start in range(0, len(self.body), self.chunk):
                        connection.sendall(self.body[start:start + self.chunk])
                        self.sent = start + self.chunk
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()
