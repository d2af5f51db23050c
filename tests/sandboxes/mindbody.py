"""A local Mindbody for tests and the demo: real HTTP on 127.0.0.1.

It serves the documented subset of Mindbody's two APIs that Rapport uses, one server for
both (point ``RAPPORT_MINDBODY_BASE_URL`` and ``RAPPORT_MINDBODY_WEBHOOKS_BASE_URL`` at it):

- Public API v6 (``/public/v6``): ``POST usertoken/issue``, ``GET client/clients``,
  ``POST client/updateclient``, ``GET appointment/staffappointments``,
  ``POST appointment/updateappointment``, ``GET site/activationcode``. Every call needs
  the developer's ``Api-Key`` and a ``SiteId``; every call but the token issue and the
  activation code needs an activated site and a staff user token in ``Authorization``.
  https://developers.mindbodyonline.com/PublicDocumentation/V6 and the OpenAPI
  descriptions generated from Mindbody's SDKs, https://github.com/api-evangelist/mindbody
  (``openapi/mindbody-user-token-api-openapi.yml``, ``json-schema/public-api-v6-*``).
- Webhooks API (``/api/v1``): subscriptions created ``PendingActivation`` with their
  ``messageSignatureKey`` (returned only then), listed, activated by PATCH, deactivated
  by DELETE; its own ``API-Key``.
  https://developers.mindbodyonline.com/WebhooksDocumentation and
  ``openapi/_original/mindbody-webhooks-api-openapi-original.yml`` there.

It refuses what the reference refuses (a missing ``Api-Key`` or ``SiteId``, a wrong key,
a site that has not activated the developer account, a missing or expired token, a body
field the reference does not list or of the wrong type, an unknown query parameter) and
keeps each such refusal in ``rejected``; records every request in ``requests``; injects
failures (``fail_next``, ``delay_next``); and delivers appointment events to the active
subscriptions' URLs signed as Mindbody signs them
(``X-Mindbody-Signature: sha256=<base64(HMAC-SHA256(messageSignatureKey, body))>``).

    with MindbodySandbox() as mindbody:
        client = mindbody.seed_client(-99, email="sam@example.com")
        visit = mindbody.seed_appointment(-99, client_id=client["Id"], start=when)
        mindbody.set_status(-99, visit["Id"], "Completed")    # delivers the event
        mindbody.requests_to("POST", "/public/v6/client/updateclient")
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.sandboxes.mindbody_state import MindbodyError, MindbodyState, invalid

SIGNATURE_HEADER = "X-Mindbody-Signature"
# Query parameters each read takes (case-insensitive, with or without ``request.``).
QUERIES = {
    "client/clients": {"clientids", "searchtext", "limit", "offset", "isprospect"},
    "appointment/staffappointments": {"appointmentids", "startdate", "enddate", "staffids",
                                      "clientid", "locationids", "limit", "offset"},
}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any
    status: int | None = None


@dataclass
class _Rule:
    path_prefix: str
    remaining: int
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _Quiet(WSGIRequestHandler):
    def log(self, *args: Any) -> None:
        pass


class MindbodySandbox(MindbodyState):
    """``with MindbodySandbox() as mindbody:`` a running Mindbody at ``mindbody.base_url``.

    Seeding and acting as the business: ``seed_site``, ``activate``, ``add_staff_login``,
    ``seed_client``, ``seed_appointment``, ``edit_client``, ``edit_appointment``,
    ``set_status``, ``revoke_tokens``; what Rapport sent: ``requests``, ``requests_to``,
    ``rejected``; trouble: ``fail_next``, ``delay_next``; webhooks: ``event``, ``deliver``,
    ``deliveries``; ``settings()`` and ``credentials()`` for the adapter.
    """

    def __init__(self, *, site_id: int | str = -99, check_urls: bool = False, **options: Any):
        super().__init__(**options)
        # Integrators report that Mindbody sends HEAD to a subscription's webhookUrl when it
        # is created and refuses it without a 2xx; ``check_urls`` does the same.
        self.check_urls = check_urls
        self.url_checks: list[tuple[str, int | None]] = []
        self.requests: list[Recorded] = []
        self.rejected: list[tuple[Recorded, dict[str, Any]]] = []
        self.deliveries: list[tuple[str, bytes, int]] = []
        self._rules: list[_Rule] = []
        self._server = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.site_id = str(site_id)
        self.seed_site(site_id)

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> MindbodySandbox:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True,
                                   request_handler=_Quiet)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> MindbodySandbox:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Rapport's installation settings for this stand-in (lower-case names)."""
        return {"api_key": self.api_key, "source_name": self.source_name,
                "source_password": self.source_password,
                "webhooks_api_key": self.webhooks_api_key, "base_url": self.base_url,
                "webhooks_base_url": self.base_url, "timeout": 5, **extra}

    def credentials(self, site_id: int | str | None = None, **extra: Any) -> dict[str, Any]:
        """What a call for a clinic carries: its sealed values and the installation's."""
        return {"site_id": str(site_id or self.site_id), "api_key": self.api_key,
                "source_name": self.source_name, "source_password": self.source_password,
                "base_url": self.base_url, "timeout": 5, **extra}

    # --- failures ---------------------------------------------------------------------

    def fail_next(self, path_prefix: str, status: int, times: int = 1, *,
                  headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests under ``path_prefix`` with ``status``."""
        with self._lock:
            self._rules.append(_Rule(path_prefix, times, status=status,
                                     headers=dict(headers or {})))

    def delay_next(self, path_prefix: str, seconds: float, times: int = 1) -> None:
        """Answer the next requests under ``path_prefix`` only after ``seconds``."""
        with self._lock:
            self._rules.append(_Rule(path_prefix, times, delay=seconds))

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    # --- webhooks out ------------------------------------------------------------------

    def event(self, event_type: str, site_id: int | str, appointment_id: int | str, *,
              message_id: str | None = None) -> dict[str, Any]:
        """The body Mindbody sends for ``event_type`` about the appointment as it is now."""
        visit = self.appointment(site_id, appointment_id)
        client = self.client(site_id, visit["ClientId"])
        staff = visit["Staff"]
        return {
            "messageId": message_id or uuid.uuid4().hex[:22],
            "eventId": event_type,
            "eventSchemaVersion": 1,
            "eventInstanceOriginationDateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventData": {
                "siteId": int(site_id), "appointmentId": visit["Id"], "status": visit["Status"],
                "isConfirmed": visit["Status"] == "Confirmed",
                "hasArrived": visit["Status"] in ("Arrived", "Completed"),
                "locationId": visit["LocationId"], "clientId": client["Id"],
                "clientUniqueId": client["UniqueId"], "clientFirstName": client["FirstName"],
                "clientLastName": client["LastName"], "clientEmail": client["Email"],
                "clientPhone": None, "staffId": staff["Id"], "staffFirstName": staff["FirstName"],
                "staffLastName": staff["LastName"], "startDateTime": visit["StartDateTime"],
                "endDateTime": visit["EndDateTime"], "durationMinutes": visit["Duration"],
                "genderRequested": None, "resources": [], "notes": visit["Notes"] or None,
                "formulaNotes": None, "icdCodes": [], "providerId": None,
                "sessionTypeId": visit["SessionTypeId"], "appointmentName": visit["Name"],
            },
        }

    def deliver(self, url: str, event: dict[str, Any] | bytes, *, signature_key: str,
                timeout: float = 10.0) -> requests.Response:
        """POST ``event`` to ``url`` signed with ``signature_key``, as Mindbody does."""
        body = event if isinstance(event, bytes) else json.dumps(event).encode("utf-8")
        digest = hmac.new(signature_key.encode("utf-8"), body, hashlib.sha256).digest()
        headers = {"Content-Type": "application/json",
                   SIGNATURE_HEADER: "sha256=" + base64.b64encode(digest).decode("ascii")}
        answer = requests.post(url, data=body, headers=headers, timeout=timeout)
        with self._lock:
            self.deliveries.append((url, body, answer.status_code))
        return answer

    def set_status(self, site_id: int | str, appointment_id: int | str,
                   status: str) -> list[dict[str, Any]]:
        """The business changes an appointment's status; every active subscription that
        asked for the event gets it. Returns the events sent."""
        self.edit_appointment(site_id, appointment_id, Status=status)
        event_type = ("appointmentBooking.cancelled" if status in ("Cancelled", "LateCancelled")
                      else "appointmentBooking.updated")
        with self._lock:
            listening = [dict(s) for s in self.subscriptions.values()
                         if s["status"] == "Active" and event_type in s["eventIds"]]
        sent = []
        for subscription in listening:
            event = self.event(event_type, site_id, appointment_id)
            self.deliver(subscription["webhookUrl"], event,
                         signature_key=subscription["messageSignatureKey"])
            sent.append(event)
        return sent

    def create_subscription(self, body: Any) -> dict[str, Any]:
        url = body.get("webhookUrl") if isinstance(body, dict) else None
        if self.check_urls and isinstance(url, str):
            try:
                status: int | None = requests.head(url, timeout=5).status_code
            except requests.RequestException:
                status = None
            with self._lock:
                self.url_checks.append((url, status))
            if status is None or not 200 <= status < 300:
                raise invalid(f"webhookUrl {url} answered HEAD with {status}, not 2xx",
                              webhooks=True)
        return super().create_subscription(body)

    # --- the server -------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        body = request.get_data(cache=False)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        recorded = Recorded(request.method, request.path,
                            {k: request.args.getlist(k) for k in request.args},
                            {k.lower(): v for k, v in request.headers.items()}, body, parsed)
        with self._lock:
            self.requests.append(recorded)
        response = self._respond(request, recorded)
        recorded.status = response.status_code
        return response(environ, start_response)

    def _respond(self, request: Request, recorded: Recorded) -> Response:
        rule = self._take_rule(request.path)
        if rule is not None:
            if rule.delay:
                time.sleep(rule.delay)
            if rule.status is not None:
                error = MindbodyError(rule.status, "Injected", "failure injected by the stand-in",
                                      webhooks=request.path.startswith("/api/"))
                return _json(error.body(), rule.status, rule.headers)
        try:
            if body_problem := self._body_problem(request, recorded):
                raise body_problem
            status, answer = self._route(request.method, request.path, recorded)
        except MindbodyError as error:
            if 400 <= error.status < 500:
                with self._lock:
                    self.rejected.append((recorded, error.body()))
            return _json(error.body(), error.status)
        return _json(answer, status)

    def _body_problem(self, request: Request, recorded: Recorded) -> MindbodyError | None:
        if request.method in ("POST", "PATCH") and recorded.body:
            webhooks = request.path.startswith("/api/")
            if "json" not in (request.content_type or ""):
                return MindbodyError(415, "UnsupportedMediaType", "Send JSON.", webhooks=webhooks)
            if recorded.json is None:
                return MindbodyError(400, "InvalidParameter", "The body is not JSON.",
                                     webhooks=webhooks)
        return None

    def _route(self, method: str, path: str, recorded: Recorded) -> tuple[int, dict[str, Any]]:
        headers, body = recorded.headers, recorded.json
        if path.startswith("/api/v1/subscriptions"):
            self.webhooks_key(headers)
            rest = path[len("/api/v1/subscriptions"):].strip("/")
            handlers = {("POST", False): lambda: self.create_subscription(body),
                        ("GET", False): self.list_subscriptions,
                        ("GET", True): lambda: self.get_subscription(rest),
                        ("PATCH", True): lambda: self.patch_subscription(rest, body),
                        ("DELETE", True): lambda: self.delete_subscription(rest)}
            handler = handlers.get((method, bool(rest)))
            if handler is None:
                raise MindbodyError(405, "methodNotAllowed", f"{method} {path}", webhooks=True)
            return 200, handler()
        endpoint = path.removeprefix("/public/v6/").lower()
        if not path.lower().startswith("/public/v6/"):
            raise MindbodyError(404, "NotFound", f"no such endpoint {path}")
        if (method, endpoint) == ("GET", "site/activationcode"):
            return 200, self.activation_code(self.public_site(headers, activated=False))
        site = self.public_site(headers)
        if (method, endpoint) == ("POST", "usertoken/issue"):
            return 200, self.issue_token(site, body)
        self.staff_token(site, headers)
        query = self._query(endpoint, recorded.query)
        routes = {("GET", "client/clients"): lambda: self.clients(site, query),
                  ("POST", "client/updateclient"): lambda: self.update_client(site, body),
                  ("GET", "appointment/staffappointments"):
                      lambda: self.staff_appointments(site, query),
                  ("POST", "appointment/updateappointment"):
                      lambda: self.update_appointment(site, body)}
        handler = routes.get((method, endpoint))
        if handler is None:
            raise MindbodyError(404, "NotFound", f"no such endpoint {method} {path}")
        return 200, handler()

    def _query(self, endpoint: str, raw: dict[str, list[str]]) -> dict[str, list[str]]:
        allowed = QUERIES.get(endpoint, set())
        query: dict[str, list[str]] = {}
        for name, values in raw.items():
            key = name.lower().removeprefix("request.")
            if key not in allowed:
                raise MindbodyError(400, "InvalidParameter", f"unknown query parameter {name}")
            if key in ("limit", "offset") and not all(v.isdigit() for v in values):
                raise MindbodyError(400, "InvalidParameter", f"{name} must be a number")
            query.setdefault(key, []).extend(values)
        return query

    def _take_rule(self, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining > 0 and path.startswith(rule.path_prefix):
                    rule.remaining -= 1
                    return rule
        return None


def _json(payload: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers or {},
                    content_type="application/json")
