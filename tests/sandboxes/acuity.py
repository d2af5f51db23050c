"""A local Acuity Scheduling for tests and the demo: real HTTP on 127.0.0.1.

It serves the subset of Acuity's API v1 Rapport uses — ``/me``, appointments get and
update, clients search and update, webhooks create, list and delete — and holds Rapport to
the contract: Basic auth with the user ID and API key (401 otherwise), JSON bodies checked
against the request schemas of the community OpenAPI description
(``shared/platforms/acuity/swagger.json``: an unknown field, a wrong type is refused with
Acuity's error shape and recorded in ``rejected``), and every answer it gives checked
against the response schema, so the stand-in cannot drift either (leaving the context
manager raises if one did not match).

Where the stand-in is stricter than Acuity, on purpose: Acuity ignores attributes of
``PUT /appointments/:id`` it does not take, and what it does with ``notes`` sent without
``admin=true`` is not documented; both are refused here, so a write Acuity would drop
fails a test instead of passing silently. ``PUT /clients`` is read as the specification
means it: its ``lasttName`` query parameter is a typo for ``lastName``.

    with AcuitySandbox() as acuity:
        booked = acuity.seed_appointment(start="2026-11-25T15:00:00Z", notes="Left knee.")
        acuity.fail_next("/api/v1/appointments/", 429, headers={"Retry-After": "7"})
        handlers.acuity.write_back(acuity.credentials(), target, note)
        acuity.requests_to("PUT", f"/api/v1/appointments/{booked['id']}")
        acuity.notify("scheduled", booked["id"])   # deliver as Acuity would, signed
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.sandboxes.acuity_state import AcuityError, AcuityState

SIGNATURE_HEADER = "X-Acuity-Signature"
FORM = "application/x-www-form-urlencoded"
PREFIX = "/api/v1"
# (method, path under /api/v1, the specification's path or None, handler)
ROUTES = [
    ("GET", "/me", "/me", "me"),
    ("GET", "/appointments/{appointmentId}", "/appointments/{appointmentId}", "get_appointment"),
    ("PUT", "/appointments/{appointmentId}", "/appointments/{appointmentId}",
     "update_appointment"),
    ("GET", "/clients", "/clients", "list_clients"),
    ("PUT", "/clients", "/clients", "update_client"),
    ("GET", "/webhooks", None, "list_webhooks"),
    ("POST", "/webhooks", None, "create_webhook"),
    ("DELETE", "/webhooks/{id}", None, "delete_webhook"),
]


@dataclass
class Recorded:
    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    status: int | None = None


@dataclass
class _Rule:
    path_prefix: str
    method: str | None
    remaining: int
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        wanted = self.method is None or self.method == method
        return self.remaining > 0 and wanted and path.startswith(self.path_prefix)


class _Quiet(WSGIRequestHandler):
    def log(self, *args: Any) -> None:
        pass


class AcuitySandbox(AcuityState):
    """``with AcuitySandbox() as acuity:`` a running Acuity at ``acuity.base_url``.

    Seeding and acting as the clinic: ``seed_appointment``, ``seed_client``,
    ``put_appointment``, ``cancel``, ``mark_no_show``, ``reschedule``, ``edit_notes``,
    ``rotate_api_key``, ``appointment``, ``client``, ``webhooks``; what Rapport sent:
    ``requests``, ``requests_to``, ``rejected``; trouble: ``fail_next``, ``delay_next``;
    webhooks out: ``form_body``, ``signature``, ``deliver``, ``notify``; ``credentials()``.
    """

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.requests: list[Recorded] = []
        self.rejected: list[tuple[Recorded, dict[str, Any]]] = []
        self.contract_errors: list[str] = []
        self._rules: list[_Rule] = []
        self._routes = Map([
            Rule(PREFIX + re.sub(r"\{(\w+)\}", r"<\1>", path), methods=[method],
                 endpoint=(spec_path, name))
            for method, path, spec_path, name in ROUTES
        ])
        self._server = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        # Webhooks the admin pasted in Acuity (Integrations → API → Webhooks), by action.
        self.static_webhooks: dict[str, str] = {}
        self._routes_out: dict[str, str] = {}

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> AcuitySandbox:
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

    def __enter__(self) -> AcuitySandbox:
        return self.start()

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        self.stop()
        if kind is None and self.contract_errors:
            raise AssertionError("the Acuity stand-in answered outside the specification:\n"
                                 + "\n".join(self.contract_errors))

    def credentials(self, **extra: Any) -> dict[str, Any]:
        """What a clinic connected to this stand-in stores, with the installation's context."""
        return {"user_id": self.user_id, "api_key": self.api_key, "previous_api_keys": [],
                "base_url": self.base_url, "timeout": 5, **extra}

    # --- failures ----------------------------------------------------------------------

    def fail_next(self, path_prefix: str, status: int, times: int = 1, *,
                  headers: dict[str, str] | None = None, method: str | None = None) -> None:
        """Answer the next ``times`` matching requests with ``status`` in Acuity's shape."""
        with self._lock:
            self._rules.append(_Rule(path_prefix, method, times, status=status,
                                     headers=dict(headers or {})))

    def delay_next(self, path_prefix: str, seconds: float, times: int = 1, *,
                   method: str | None = None) -> None:
        """Answer the next matching requests only after ``seconds`` (a client timing out)."""
        with self._lock:
            self._rules.append(_Rule(path_prefix, method, times, delay=seconds))

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    # --- webhooks out ------------------------------------------------------------------

    def form_body(self, action: str, appointment_id: int) -> bytes:
        """The body Acuity posts for ``action`` about the appointment, fields in the
        documented order."""
        appointment = self.appointment(appointment_id)
        return urlencode([("action", action), ("id", appointment["id"]),
                          ("calendarID", appointment["calendarID"]),
                          ("appointmentTypeID", appointment["appointmentTypeID"])]).encode()

    def signature(self, body: bytes, api_key: str | None = None) -> str:
        key = (api_key or self.api_key).encode("utf-8")
        return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")

    def route(self, prefix: str, to: str) -> None:
        """Deliver what is addressed under ``prefix`` to ``to`` instead, as a proxy in front
        of Rapport would: Acuity delivers only to port 443 or 80, while tests and the demo
        serve Rapport on a free port."""
        with self._lock:
            self._routes_out[prefix.rstrip("/")] = to.rstrip("/")

    def paste_webhook_url(self, url: str,
                          actions: Iterable[str] = ("scheduled", "rescheduled", "canceled")
                          ) -> None:
        """The main admin pastes ``url`` into Acuity's static webhook fields for
        ``actions`` (signed, like every delivery, with the main admin's API key)."""
        with self._lock:
            for action in actions:
                self.static_webhooks[action] = url

    def deliver(self, url: str, body: bytes, *, api_key: str | None = None,
                timeout: float = 10.0) -> requests.Response:
        """POST ``body`` to ``url`` as Acuity does: form-encoded, signed with the API key."""
        headers = {"Content-Type": FORM, SIGNATURE_HEADER: self.signature(body, api_key)}
        with self._lock:
            for prefix, to in self._routes_out.items():
                if url == prefix or url.startswith(prefix + "/"):
                    url = to + url[len(prefix):]
                    break
        return requests.post(url, data=body, headers=headers, timeout=timeout)

    def notify(self, action: str, appointment_id: int) -> list[requests.Response]:
        """Deliver ``action`` (``scheduled``, ``rescheduled``, ``canceled``) about the
        appointment to every webhook registered for it, and ``changed`` to those registered
        for any change; then to the URLs pasted for it (and for ``changed``)."""
        with self._lock:
            hooks = [dict(w) for w in self.webhooks if w["status"] == "active"]
            pasted = dict(self.static_webhooks)
        sent = []
        for hook in hooks:
            if hook["event"] in (f"appointment.{action}", "appointment.changed"):
                short = hook["event"].removeprefix("appointment.")
                sent.append(self.deliver(hook["target"], self.form_body(short, appointment_id)))
        for short in (action, "changed"):
            if short in pasted:
                sent.append(self.deliver(pasted[short], self.form_body(short, appointment_id)))
        return sent

    # --- the server --------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        body = request.get_data(cache=False)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        recorded = Recorded(request.method, request.path, dict(request.args),
                            {k.lower(): v for k, v in request.headers.items()}, body, parsed)
        with self._lock:
            self.requests.append(recorded)
        response = self._respond(request, recorded)
        recorded.status = response.status_code
        return response(environ, start_response)

    def _respond(self, request: Request, recorded: Recorded) -> Response:
        rule = self._take_rule(request.method, request.path)
        if rule is not None:
            if rule.delay:
                time.sleep(rule.delay)
            if rule.status is not None:
                error = AcuityError(rule.status, "failure injected by the stand-in")
                return _json(error.body, rule.status, rule.headers)
        try:
            (spec_path, name), args = self._routes.bind_to_environ(request.environ).match()
        except HTTPException as missing:
            status = 405 if missing.code == 405 else 404
            return _json(AcuityError(status, "Not Found" if status == 404
                                     else "Method Not Allowed").body, status)
        try:
            self._authenticate(request)
            payload = self._body(request, recorded, spec_path)
            with self._lock:
                answer = getattr(self, "_" + name)(args=dict(request.args), body=payload, **args)
        except AcuityError as error:
            if error.status == 400:
                with self._lock:
                    self.rejected.append((recorded, error.body))
            return _json(error.body, error.status)
        self._check_answer(request.method, spec_path, answer)
        return _json(answer, 200)

    def _take_rule(self, method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    return rule
        return None

    def _authenticate(self, request: Request) -> None:
        auth = request.authorization
        with self._lock:
            expected = (self.user_id, self.api_key)
        if auth is None or auth.type != "basic" or (auth.username, auth.password) != expected:
            raise AcuityError(401, "Unauthorized")

    def _body(self, request: Request, recorded: Recorded, spec_path: str | None) -> Any:
        if request.method not in ("POST", "PUT"):
            return None
        if not isinstance(recorded.json, dict) or "json" not in (request.content_type or ""):
            raise AcuityError(400, "Expected a JSON object.")
        schema = self.contract.request_schema(request.method, spec_path) if spec_path else None
        if schema:
            problems = self.contract.problems(schema, recorded.json, request=True)
            if problems:
                first = problems[0]
                raise AcuityError(400, f"{first.field or 'body'}: {first.message}",
                                  "invalid_" + (first.field.split(".")[0] or "body"))
        return recorded.json

    def _check_answer(self, method: str, spec_path: str | None, answer: Any) -> None:
        found = _response_schema(self.contract.spec, method, spec_path) if spec_path else None
        if found is None:
            return
        name, many = found
        for document in (answer if many and isinstance(answer, list) else [answer]):
            for problem in self.contract.problems(name, document, request=False):
                with self._lock:
                    self.contract_errors.append(
                        f"{method} {spec_path}: {problem.field} {problem.message}")


def _response_schema(spec: dict[str, Any], method: str,
                     spec_path: str) -> tuple[str, bool] | None:
    """The component a 200 answer is made of, and whether it is a list of them (``GET
    /clients`` answers one client or an array of them)."""
    ok = spec["paths"][spec_path][method.lower()]["responses"].get("200", {})
    schema = ok.get("content", {}).get("application/json", {}).get("schema")
    if not schema:
        return None
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1], False
    for branch in schema.get("oneOf", ()):
        if branch.get("type") == "array" and "$ref" in branch.get("items", {}):
            return branch["items"]["$ref"].rsplit("/", 1)[-1], True
    return None


def _json(payload: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers or {},
                    content_type="application/json")
