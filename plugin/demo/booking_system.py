"""A small simulated booking system for ``rapport demo``.

It plays the clinic's side of the generic platform: it sends signed Standard Webhooks
when an appointment is booked and completed, receives Rapport's
``client.alliance_updated`` callbacks (verifying their signature with the
``standardwebhooks`` library), and shows each client's profile with Rapport's note,
the way a booking tool would.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone

import requests
from flask import Flask, abort, render_template_string, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from handlers import generic

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · Harbour Booking (simulated)</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:1rem auto;padding:0 1rem;color:#222}
pre{background:#f4f6f5;padding:1rem;white-space:pre-wrap;border-radius:.4rem}
.tag{background:#e3ece8;border-radius:.3rem;padding:0 .4rem;font-size:.85rem}</style></head><body>
<p class="tag">Harbour Booking — a simulated booking system for the Rapport demo</p>
{{ body|safe }}</body></html>"""


class SimulatedBookingSystem:
    def __init__(self) -> None:
        self.clients: dict[str, dict] = {}
        self.callbacks: list[dict] = []
        self.received = threading.Condition()
        self.webhook_url = ""
        self.webhook_secret = ""
        self.callback_secret = ""
        self.app = self._build_app()

    def connect(self, *, webhook_url: str, webhook_secret: str, callback_secret: str) -> None:
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.callback_secret = callback_secret

    def add_client(self, client_id: str, first_name: str, email: str) -> None:
        self.clients[client_id] = {"id": client_id, "first_name": first_name, "email": email,
                                   "notes": "Prefers the window room and a warm table.",
                                   "appointments": []}

    def send(self, event_type: str, appointment: dict, client_id: str,
             therapist: dict) -> requests.Response:
        """Send one signed webhook to Rapport, as the booking system would."""
        client = self.clients[client_id]
        body = json.dumps({
            "type": event_type,
            "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "data": {
                "appointment": appointment,
                "client": {"id": client_id, "email": client["email"],
                           "first_name": client["first_name"], "locale": "en"},
                "therapist": therapist,
            },
        }).encode()
        headers = generic.sign(body, secret=self.webhook_secret, msg_id=f"msg_{uuid.uuid4().hex}")
        if all(known["id"] != appointment["id"] for known in client["appointments"]):
            client["appointments"].append(appointment)
        return requests.post(self.webhook_url, data=body, headers=headers, timeout=10)

    def wait_for_callback(self, count: int, timeout: float = 10) -> bool:
        with self.received:
            return self.received.wait_for(lambda: len(self.callbacks) >= count, timeout)

    def _build_app(self) -> Flask:
        app = Flask("demo_booking")

        @app.post("/rapport-callback")
        def callback():
            try:
                event = Webhook(self.callback_secret).verify(request.get_data(), request.headers)
            except WebhookVerificationError:
                abort(401)
            data = event["data"]
            client = self.clients.get(data["client"]["id"])
            if client is not None:
                client["rapport_note"] = data["note"]
            with self.received:
                self.callbacks.append({"id": request.headers["webhook-id"], "event": event,
                                       "verified": True})
                self.received.notify_all()
            return "", 204

        @app.get("/")
        def index():
            rows = "".join(
                f'<li><a href="/clients/{c["id"]}">{c["first_name"]}</a> — '
                f'{len(c["appointments"])} appointment(s)</li>' for c in self.clients.values())
            return render_template_string(PAGE, title="Clients",
                                          body=f"<h1>Clients</h1><ul>{rows}</ul>")

        @app.get("/clients/<client_id>")
        def client_page(client_id: str):
            client = self.clients.get(client_id) or abort(404)
            return render_template_string(
                PAGE + "", title=client["first_name"],
                body=render_template_string(
                    "<h1>{{ c.first_name }}</h1><p>{{ c.email }}</p>"
                    "<h2>Client notes</h2><pre>{{ c.notes }}{% if c.rapport_note %}\n\n"
                    "{{ c.rapport_note }}{% endif %}</pre>"
                    "{% if not c.rapport_note %}<p>No Rapport note yet.</p>{% endif %}"
                    '<p><a href="/">All clients</a></p>', c=client))

        return app
