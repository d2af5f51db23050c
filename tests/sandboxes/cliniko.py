"""A local Cliniko for tests: real HTTP on 127.0.0.1, serving the documented subset of
Cliniko's API that Rapport uses, holding Rapport to what Cliniko asks of a client.

    with ClinikoSandbox() as cliniko:
        sam = cliniko.seed_patient(first_name="Sam", email="sam@example.com")
        cliniko.seed_appointments(500, patient=sam, first_start=last_year, kind="arrived")
        cliniko.fail_next("/patients/", 429, headers={"Retry-After": "7"})
        cliniko.clock.advance(minutes=5)
        cliniko.requests_to("PATCH", "/patients/")

Every shard is served under ``/shards/<shard>/v1`` (``settings()["base_url"]`` is the
template Rapport's ``RAPPORT_CLINIKO_BASE_URL`` takes). Before answering, like Cliniko
(https://docs.api.cliniko.com/: "Authentication", "Identifying your application", "Rate
limits"; https://docs.api.cliniko.com/guides/sharding), it refuses:

- a request without a ``User-Agent`` of the form ``Name (contact@email)``: 403 (Cliniko
  says such requests "may be automatically blocked"; the status is this stand-in's);
- no Basic authentication, an unknown key, or a key sent to another shard's URL: 401;
- the 201st request in a minute of the same user: 429 with ``X-RateLimit-Reset``.

Records, filters, paging and sorting live in :mod:`tests.sandboxes.cliniko_state`. Every
request is recorded (with the stand-in's time); what the stand-in itself refused is also in
``refused``; ``fail_next`` and ``delay_next`` inject failures and slow answers.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.sandboxes.cliniko_state import ClinikoError, ClinikoState, stamp

CONTACT_EMAIL = "ops@rapport.example"
USER_AGENT = re.compile(r"^\S.*? \([^\s()@]+@[^\s()@]+\.[A-Za-z]{2,}\)$")
PREFIX = re.compile(r"^/shards/(?P<shard>[a-z]{2}\d{1,2})/v1(?P<path>/.*)$")


@dataclass
class Recorded:
    method: str
    path: str  # after /shards/<shard>/v1
    shard: str | None
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any
    at: datetime  # the stand-in's time
    status: int | None = None

    def filters(self) -> list[str]:
        return [value for name, value in self.query if name == "q[]"]


@dataclass
class _Rule:
    prefix: str
    method: str | None
    remaining: int
    skip: int = 0
    status: int | None = None
    headers: dict[str, str] | None = None
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.remaining > 0 and path.startswith(self.prefix)
                and self.method in (None, method))

    def take(self) -> bool:
        """Whether this request is the rule's (one let through first is not)."""
        if self.skip:
            self.skip -= 1
            return False
        self.remaining -= 1
        return True


class _Quiet(WSGIRequestHandler):
    def log(self, *args: Any) -> None:
        pass


class ClinikoSandbox(ClinikoState):
    """``with ClinikoSandbox() as cliniko:`` a running Cliniko at ``cliniko.url``."""

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.requests: list[Recorded] = []
        self.refused: list[Recorded] = []
        self._rules: list[_Rule] = []
        self._released = threading.Event()
        self._routes = Map([
            Rule("/user", methods=["GET"], endpoint="user"),
            Rule("/practitioners", methods=["GET"], endpoint="practitioners"),
            Rule("/individual_appointments", methods=["GET"], endpoint="appointments"),
            Rule("/individual_appointments/<appointment_id>", methods=["GET"],
                 endpoint="appointment"),
            # PATCH in the current reference, PUT in its predecessor: both served.
            Rule("/individual_appointments/<appointment_id>", methods=["PATCH", "PUT"],
                 endpoint="update_appointment"),
            Rule("/patients/<patient_id>", methods=["GET"], endpoint="patient"),
            Rule("/patients/<patient_id>", methods=["PATCH", "PUT"], endpoint="update_patient"),
        ])
        self._server = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> ClinikoSandbox:
        clock = self.clock

        class Handler(_Quiet):
            def date_time_string(self, timestamp: float | None = None) -> str:
                # Every answer's Date is the stand-in's time, as Cliniko's is its own.
                return format_datetime(clock.now(), usegmt=True)

        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True,
                                   request_handler=Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # slow answers end now
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> ClinikoSandbox:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Rapport's installation settings for Cliniko, pointed at this stand-in."""
        return {"contact_email": CONTACT_EMAIL, "base_url": f"{self.url}/shards/{{shard}}/v1",
                **extra}

    # --- failures and what was asked ---------------------------------------------------

    def fail_next(self, prefix: str, status: int, times: int = 1, *,
                  headers: dict[str, str] | None = None, method: str | None = None,
                  after: int = 0) -> None:
        """Answer ``times`` requests whose path starts with ``prefix`` (after ``/v1``) with
        ``status``, before any other check, once ``after`` of them have been let through."""
        with self._lock:
            self._rules.append(_Rule(prefix, method, times, skip=after, status=status,
                                     headers=dict(headers or {})))

    def delay_next(self, prefix: str, seconds: float, times: int = 1, *,
                   method: str | None = None) -> None:
        """Answer the next matching requests only after ``seconds`` of real time (a client
        with a shorter timeout gives up first; stopping the stand-in ends the wait)."""
        with self._lock:
            self._rules.append(_Rule(prefix, method, times, delay=seconds))

    def requests_to(self, method: str, prefix: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def busiest_minute(self) -> int:
        """The most requests that arrived within any 60 seconds of the stand-in's clock."""
        with self._lock:
            times = sorted(r.at for r in self.requests)
        most, first = 0, 0
        for last, when in enumerate(times):
            while when - times[first] >= timedelta(minutes=1):
                first += 1
            most = max(most, last - first + 1)
        return most

    # --- the server -------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        body = request.get_data(cache=False)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        found = PREFIX.match(request.path)
        recorded = Recorded(request.method, found["path"] if found else request.path,
                            found["shard"] if found else None,
                            list(request.args.items(multi=True)),
                            {k.lower(): v for k, v in request.headers.items()}, body, parsed,
                            self.clock.now())
        with self._lock:
            self.requests.append(recorded)
        response = self._respond(request, recorded)
        recorded.status = response.status_code
        return response(environ, start_response)

    def _respond(self, request: Request, recorded: Recorded) -> Response:
        rule = self._take_rule(recorded.method, recorded.path)
        if rule is not None:
            if rule.delay:
                self._released.wait(rule.delay)
            if rule.status is not None:
                return _json({"message": "failure injected by the stand-in"}, rule.status,
                             rule.headers)
        try:
            if recorded.shard is None:
                raise ClinikoError(404, "Not found")
            try:
                endpoint, args = self._routes.bind("api").match(recorded.path, recorded.method)
            except HTTPException as error:
                raise ClinikoError(error.code or 404, "Not found") from None
            self._check_user_agent(request)
            account = self._authenticate(request, recorded.shard)
            self.count_call(account)
            status, answer = getattr(self, "_" + endpoint)(request, recorded, account, **args)
        except ClinikoError as error:
            if error.status in (400, 401, 403, 415, 422, 429):
                with self._lock:
                    self.refused.append(recorded)
            return _json(error.body, error.status, error.headers)
        return _json(answer, status)

    def _take_rule(self, method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path) and rule.take():
                    return rule
        return None

    def _check_user_agent(self, request: Request) -> None:
        if not USER_AGENT.match(request.headers.get("User-Agent", "")):
            raise ClinikoError(403, "Requests must identify the application and a contact "
                               "email in the User-Agent: APP_VENDOR_NAME (APP_VENDOR_EMAIL)")

    def _authenticate(self, request: Request, shard: str) -> dict[str, Any]:
        scheme, _, encoded = (request.headers.get("Authorization") or "").partition(" ")
        try:
            user = base64.b64decode(encoded, validate=True).decode().partition(":")[0]
        except ValueError:
            user = ""
        body, _, suffix = user.rpartition("-") if "-" in user else (user, "", "")
        with self._lock:
            account = self.accounts.get(body) if scheme == "Basic" else None
        if account is None or (suffix and suffix != account["shard"]):
            raise ClinikoError(401, "Unauthorized")
        if account["shard"] != shard:
            # The key is right, the host is another shard's: that shard has no such user.
            raise ClinikoError(401, "Unauthorized")
        return account

    def _json_body(self, request: Request, recorded: Recorded) -> dict[str, Any]:
        if "json" not in (request.content_type or ""):
            raise ClinikoError(415, "Content-Type must be application/json")
        payload = recorded.json
        if not isinstance(payload, dict):
            raise ClinikoError(400, "The body must be a JSON object")
        return payload

    # --- endpoints ---------------------------------------------------------------------

    def _user(self, request, recorded, account):
        return 200, {**account["user"], "links": {"self": self._link("users",
                                                                     account["user"]["id"])}}

    def _practitioners(self, request, recorded, account):
        item = {"id": self.practitioner_id, "first_name": "Dana", "last_name": "Ruiz",
                "active": True, "links": {"self": self._link("practitioners",
                                                             self.practitioner_id)}}
        return 200, {"practitioners": [item], "total_entries": 1,
                     "links": {"self": self._page_url(recorded, 1)}}

    def _appointments(self, request, recorded, account):
        page, per_page = _int(request.args.get("page"), 1), _int(request.args.get("per_page"), 50)
        if page < 1 or not 1 <= per_page <= 100:
            raise ClinikoError(400, "page must be 1 or more, per_page between 1 and 100")
        rows, total, more = self.list_appointments(
            request.args.getlist("q[]"), request.args.get("sort"), request.args.get("order"),
            page, per_page)
        links = {"self": self._page_url(recorded, page)}
        if more:
            links["next"] = self._page_url(recorded, page + 1)
        if page > 1:
            links["previous"] = self._page_url(recorded, page - 1)
        return 200, {"individual_appointments": [self.render_appointment(r) for r in rows],
                     "total_entries": total, "links": links}

    def _appointment(self, request, recorded, account, appointment_id):
        return 200, self.render_appointment(self.get_appointment(appointment_id))

    def _update_appointment(self, request, recorded, account, appointment_id):
        updated = self.update_appointment(appointment_id, self._json_body(request, recorded))
        return 200, self.render_appointment(updated)

    def _patient(self, request, recorded, account, patient_id):
        return 200, self.render_patient(self.get_patient(patient_id))

    def _update_patient(self, request, recorded, account, patient_id):
        return 200, self.render_patient(self.update_patient(patient_id,
                                                            self._json_body(request, recorded)))

    # --- records as Cliniko writes them -------------------------------------------------

    def render_appointment(self, record: dict[str, Any]) -> dict[str, Any]:
        shown = {k: (stamp(v) if isinstance(v, datetime) else v) for k, v in record.items()
                 if not k.endswith("_id") or k == "repeated_from_id"}
        for name, plural in (("patient", "patients"), ("practitioner", "practitioners"),
                             ("appointment_type", "appointment_types"),
                             ("business", "businesses")):
            linked = record.get(f"{name}_id")
            shown[name] = {"links": {"self": self._link(plural, linked)}} if linked else None
        ident = record["id"]
        shown["attendees"] = {"links": {"self": self._link(
            f"individual_appointments/{ident}", None, "attendees")}}
        shown["conflicts"] = {"links": {"self": self._link(
            f"individual_appointments/{ident}", None, "conflicts")}}
        shown["links"] = {"self": self._link("individual_appointments", ident)}
        return shown

    def render_patient(self, record: dict[str, Any]) -> dict[str, Any]:
        shown = {k: (stamp(v) if isinstance(v, datetime) else v) for k, v in record.items()}
        shown["links"] = {"self": self._link("patients", record["id"])}
        return shown

    def _link(self, plural: str, ident: Any, tail: str = "") -> str:
        path = "/".join(str(p) for p in (plural, ident, tail) if p)
        return f"{self.url}/shards/{self.shard}/v1/{path}"

    def _page_url(self, recorded: Recorded, page: int) -> str:
        query = [(k, v) for k, v in recorded.query if k != "page"] + [("page", str(page))]
        return f"{self.url}/shards/{recorded.shard}/v1{recorded.path}?{urlencode(query)}"


def _int(value: str | None, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit():
        raise ClinikoError(400, f"{value!r} is not a number")
    return int(value)


def _json(payload: dict[str, Any], status: int, headers: dict[str, str] | None = None
          ) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers or {},
                    content_type="application/json")
