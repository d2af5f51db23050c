"""A local Square for tests, the demo and benchmarks: real HTTP on 127.0.0.1.

It serves the documented subset of Square's API that Rapport uses, answering in the
shapes of Square's own OpenAPI specification (``shared/platforms/square/api.json``), and
holds Rapport to the same contract: every request body is validated against the spec's
request schema and answered ``400 INVALID_REQUEST_ERROR`` naming the field when it breaks
it, and every answer the sandbox gives is checked against the response schema (leaving the
context manager raises if one did not match, so the sandbox cannot drift either).

    with SquareSandbox() as square:
        customer = square.seed_customer(given_name="Sam", email_address="sam@example.com")
        booking = square.seed_booking(customer_id=customer["id"], start_at="2026-11-25T14:00:00Z")
        square.fail_next("/v2/customers/", 429, headers={"Retry-After": "7"})
        handlers.square.write_back(square.credentials(), target, note)
        square.requests_to("PUT", "/v2/customers/" + customer["id"])

What it answers, and how records, versions, OAuth codes and tokens behave, lives in
:mod:`tests.sandboxes.square_state`; this module serves it over HTTP, checks the contract,
tokens and idempotency keys, records every request and injects failures. Square's documentation
behind each behaviour is cited in handlers/square/.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.sandboxes.square_state import ALL_SCOPES, SquareError, SquareState, rfc3339_now

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
ROUTES = [
    ("GET", "/v2/bookings/{booking_id}", "retrieve_booking"),
    ("PUT", "/v2/bookings/{booking_id}", "update_booking"),
    ("POST", "/v2/bookings", "create_booking"),
    ("GET", "/v2/customers/{customer_id}", "retrieve_customer"),
    ("PUT", "/v2/customers/{customer_id}", "update_customer"),
    ("POST", "/v2/customers/custom-attribute-definitions", "create_definition"),
    ("GET", "/v2/customers/custom-attribute-definitions/{key}", "retrieve_definition"),
    ("POST", "/v2/customers/{customer_id}/custom-attributes/{key}", "upsert_attribute"),
    ("POST", "/v2/webhooks/subscriptions", "create_subscription"),
    ("POST", "/v2/webhooks/subscriptions/{subscription_id}/test", "test_subscription"),
    ("POST", "/oauth2/token", "obtain_token"),
    ("GET", "/v2/locations/{location_id}", "retrieve_location"),
]
# How a broken JSON Schema keyword is reported, in Square's error codes.
PROBLEM_CODES = {
    "required": "MISSING_REQUIRED_PARAMETER",
    "additionalProperties": "UNKNOWN_BODY_PARAMETER",
    "maxLength": "VALUE_TOO_LONG",
    "minLength": "VALUE_TOO_SHORT",
    "type": "INCORRECT_TYPE",
    "enum": "INVALID_ENUM_VALUE",
    "pattern": "VALUE_REGEX_MISMATCH",
    "readOnly": "INVALID_VALUE",
}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any
    status: int | None = None
    at: float = field(default_factory=time.time)  # when it arrived (epoch seconds)


@dataclass
class _Rule:
    path_prefix: str
    method: str | None
    remaining: int
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    delay: float = 0.0
    callback: Callable[[], Any] | None = None

    def matches(self, method: str, path: str) -> bool:
        wanted = self.method is None or self.method == method
        return self.remaining > 0 and wanted and path.startswith(self.path_prefix)


class _Quiet(WSGIRequestHandler):
    def log(self, *args: Any) -> None:
        pass


class SquareSandbox(SquareState):
    """``with SquareSandbox() as square:`` a running Square at ``square.base_url``.

    Seeding and acting as the seller: ``seed_customer``, ``seed_booking``,
    ``update_customer``, ``update_booking``, ``customer``, ``booking``,
    ``custom_attribute``, ``definitions``, ``subscriptions``, ``main_location``; OAuth:
    ``authorize``, ``revoke``, ``expire``, ``scopes_of``; what Rapport sent: ``requests``,
    ``requests_to``, ``rejected``; trouble: ``fail_next``, ``delay_next``, ``before_next``;
    webhooks: ``booking_event``, ``deliver``, ``test_events`` (what TestWebhookSubscription
    delivered); ``credentials()`` for the adapter.
    """

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.requests: list[Recorded] = []
        self.rejected: list[tuple[Recorded, dict[str, Any]]] = []
        self.contract_errors: list[str] = []
        self._idempotency: dict[tuple[str, str, str], tuple[str, int, dict[str, Any]]] = {}
        self._rules: list[_Rule] = []
        self._routes = Map(
            [
                Rule(_werkzeug_path(path), methods=[method], endpoint=(method, path, name))
                for method, path, name in ROUTES
            ]
            + [Rule("/oauth2/authorize", methods=["GET"], endpoint=("GET", None, "authorize"))]
        )
        self._server = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> SquareSandbox:
        self._server = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_Quiet
        )
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> SquareSandbox:
        return self.start()

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        self.stop()
        if kind is None and self.contract_errors:
            raise AssertionError(
                "the Square sandbox answered outside Square's spec:\n"
                + "\n".join(self.contract_errors)
            )

    def credentials(self, **extra: Any) -> dict[str, Any]:
        """What a clinic connected to this sandbox stores (manual set-up: personal token)."""
        return {
            "access_token": self.personal_access_token,
            "base_url": self.base_url,
            "environment": "sandbox",
            **extra,
        }

    # --- failures and interleavings ----------------------------------------------------

    def fail_next(
        self,
        path_prefix: str,
        status: int,
        times: int = 1,
        *,
        headers: dict[str, str] | None = None,
        code: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (before anything else)."""
        with self._lock:
            self._rules.append(
                _Rule(
                    path_prefix,
                    method,
                    times,
                    status=status,
                    headers=dict(headers or {}),
                    code=code,
                )
            )

    def delay_next(
        self, path_prefix: str, seconds: float, times: int = 1, *, method: str | None = None
    ) -> None:
        with self._lock:
            self._rules.append(_Rule(path_prefix, method, times, delay=seconds))

    def before_next(
        self, method: str, path_prefix: str, callback: Callable[[], Any], times: int = 1
    ) -> None:
        """Run ``callback`` just before the next matching request is handled (someone else
        saving the record in between Rapport's read and its write, for instance)."""
        with self._lock:
            self._rules.append(_Rule(path_prefix, method, times, callback=callback))

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    # --- webhooks out ---------------------------------------------------------------

    def booking_event(
        self, event_type: str, booking_id: str, *, event_id: str | None = None
    ) -> dict[str, Any]:
        """The body Square sends for ``event_type`` about the booking as it is now."""
        booking = self.booking(booking_id)
        return {
            "merchant_id": self.merchant_id,
            "location_id": booking["location_id"],
            "type": event_type,
            "event_id": event_id or str(uuid.uuid4()),
            "created_at": rfc3339_now(),
            "data": {
                "type": "booking",
                "id": f"{booking_id}:{booking['version']}",
                "object": {"booking": booking},
            },
        }

    def deliver(
        self,
        url: str,
        event: dict[str, Any] | bytes,
        *,
        signature_key: str,
        notification_url: str,
        timeout: float = 10.0,
    ) -> requests.Response:
        """POST ``event`` to ``url`` signed as Square signs it for ``notification_url``.

        ``url`` is where the request goes; ``notification_url`` is the URL registered with
        the subscription, which is what Square signs (they differ behind a proxy)."""
        body = event if isinstance(event, bytes) else json.dumps(event).encode("utf-8")
        digest = hmac.new(
            signature_key.encode("utf-8"), notification_url.encode("utf-8") + body, hashlib.sha256
        ).digest()
        headers = {
            "Content-Type": "application/json",
            "square-environment": "Sandbox",
            SIGNATURE_HEADER: base64.b64encode(digest).decode("ascii"),
        }
        return requests.post(url, data=body, headers=headers, timeout=timeout)

    def _test_subscription(self, *, subscription_id: str, body: dict, **_: Any
                           ) -> tuple[int, dict]:
        """TestWebhookSubscription: the sample event is delivered now, over HTTP, signed
        as every event of the subscription, and the answer says how its URL answered
        (``status_code`` null when it did not). Runs with the sandbox's lock held, as
        every endpoint does: what answers the delivery must not call this sandbox."""
        subscription, event = self._test_event(subscription_id, body)
        payload = json.dumps(event)
        url = subscription["notification_url"]
        try:
            answer = self.deliver(url, payload.encode("utf-8"),
                                  signature_key=subscription["signature_key"],
                                  notification_url=url)
            status, text = answer.status_code, answer.text
        except requests.RequestException as error:
            status, text = None, f"{error.__class__.__name__}: {error}"
        self.test_events.append({"event_type": event["type"], "url": url, "body": event,
                                 "status": status, "answer": text})
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")
        return 200, {"subscription_test_result": {
            "id": event["event_id"], "status_code": status, "payload": payload,
            "created_at": now, "updated_at": now}}

    # --- the server -------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        body = request.get_data(cache=False)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        recorded = Recorded(
            request.method,
            request.path,
            dict(request.args),
            {k.lower(): v for k, v in request.headers.items()},
            body,
            parsed,
        )
        with self._lock:
            self.requests.append(recorded)
        response = self._respond(request, recorded)
        recorded.status = response.status_code
        return response(environ, start_response)

    def _respond(self, request: Request, recorded: Recorded) -> Response:
        rule = self._take_rule(request.method, request.path)
        if rule is not None:
            if rule.callback is not None:
                rule.callback()
            if rule.delay:
                time.sleep(rule.delay)
            if rule.status is not None:
                error = SquareError(rule.status, rule.code, "failure injected by the sandbox")
                return _json({"errors": [error.error]}, rule.status, rule.headers)
        adapter = self._routes.bind_to_environ(request.environ)
        try:
            (method, template, name), args = adapter.match()
        except HTTPException:
            return _json({"errors": [SquareError(404, detail="no such endpoint").error]}, 404)
        if name == "authorize":
            return self._authorize_page(request)
        try:
            token = self._authenticate(request, template, method)
            payload = self._body(request, recorded, method, template)
            with self._lock:
                status, answer = self._idempotent(
                    method,
                    request.path,
                    payload,
                    lambda: getattr(self, "_" + name)(token=token, body=payload, **args),
                )
        except SquareError as error:
            if error.status == 400 and error.error["code"] in PROBLEM_CODES.values():
                with self._lock:
                    self.rejected.append((recorded, error.error))
            return _json({"errors": [error.error]}, error.status)
        schema = self.contract.response_schema(method, template)
        for problem in self.contract.problems(schema, answer, request=False) if schema else ():
            with self._lock:
                self.contract_errors.append(
                    f"{method} {template}: {problem.field} {problem.message}"
                )
        return _json(answer, status)

    def _take_rule(self, method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    return rule
        return None

    def _authenticate(self, request: Request, template: str, method: str) -> dict[str, Any]:
        version = request.headers.get("Square-Version")
        if version is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", version):
            raise SquareError(400, "INVALID_SQUARE_VERSION_FORMAT", f"bad version {version!r}")
        operation = self.contract.operation(method, template)
        if operation.get("security") == []:
            return {}
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        with self._lock:
            record = self._tokens.get(token) if scheme == "Bearer" else None
        if record is None:
            raise SquareError(401, "UNAUTHORIZED", "This request could not be authorized.")
        if record.get("revoked"):
            raise SquareError(401, "ACCESS_TOKEN_REVOKED", "The access token has been revoked.")
        if record["expires"] is not None and record["expires"] <= datetime.now(UTC):
            raise SquareError(401, "ACCESS_TOKEN_EXPIRED", "The access token has expired.")
        needed = _required_scopes(operation)
        if template.startswith("/v2/webhooks") and not record.get("personal"):
            raise SquareError(
                403,
                "INSUFFICIENT_SCOPES",
                "Webhook subscriptions belong to the "
                "application: use its personal access token, not an OAuth token.",
            )
        missing = needed - record["scopes"] if record["scopes"] is not ALL_SCOPES else set()
        if missing:
            raise SquareError(
                403,
                "INSUFFICIENT_SCOPES",
                "The merchant has not given your application sufficient "
                f"permissions to do that: {', '.join(sorted(missing))}",
            )
        return record

    def _body(self, request: Request, recorded: Recorded, method: str, template: str) -> Any:
        schema = self.contract.request_schema(method, template)
        if schema is None:
            return None
        if recorded.json is None or "json" not in (request.content_type or ""):
            raise SquareError(400, "EXPECTED_JSON_BODY", "The request body must be JSON.")
        problems = self.contract.problems(schema, recorded.json, request=True)
        if problems:
            first = problems[0]
            raise SquareError(
                400,
                PROBLEM_CODES.get(first.keyword, "INVALID_VALUE"),
                first.message,
                field=first.field,
            )
        return recorded.json

    def _idempotent(
        self, method: str, path: str, payload: Any, handle: Callable[[], tuple[int, dict[str, Any]]]
    ) -> tuple[int, dict]:
        key = payload.get("idempotency_key") if isinstance(payload, dict) else None
        if not key:
            return handle()
        fingerprint = json.dumps(payload, sort_keys=True)
        seen = self._idempotency.get((method, path, key))
        if seen is not None:
            if seen[0] != fingerprint:
                raise SquareError(
                    400,
                    "IDEMPOTENCY_KEY_REUSED",
                    "The idempotency key was used for a different request.",
                )
            return seen[1], copy.deepcopy(seen[2])
        status, answer = handle()
        self._idempotency[(method, path, key)] = (fingerprint, status, copy.deepcopy(answer))
        return status, answer

    def _authorize_page(self, request: Request) -> Response:
        """The seller allows every scope asked for and is sent back with a code."""
        if request.args.get("client_id") != self.application_id:
            return Response("unknown client_id", status=400)
        redirect_uri = request.args.get("redirect_uri")
        if not redirect_uri:
            return Response("this sandbox needs redirect_uri in the authorize URL", status=400)
        code = self.authorize(request.args.get("scope", "").split(), redirect_uri=redirect_uri)
        query = urlencode(
            {"code": code, "response_type": "code", "state": request.args.get("state", "")}
        )
        return Response(status=302, headers={"Location": f"{redirect_uri}?{query}"})


def _required_scopes(operation: dict[str, Any]) -> set[str]:
    needed = {scope for need in operation.get("security") or () for scope in need.get("oauth2", ())}
    # Rapport acts for the whole business: Square asks for the ALL_ scope beside each
    # APPOINTMENTS_ one at seller level (RetrieveBooking, UpdateBooking descriptions).
    needed |= {
        s.replace("APPOINTMENTS_", "APPOINTMENTS_ALL_")
        for s in needed
        if s in ("APPOINTMENTS_READ", "APPOINTMENTS_WRITE")
    }
    return needed


def _json(payload: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload), status=status, headers=headers or {}, content_type="application/json"
    )


def _werkzeug_path(template: str) -> str:
    return re.sub(r"\{(\w+)\}", r"<\1>", template)
