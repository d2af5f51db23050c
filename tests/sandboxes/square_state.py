"""Square's records and the behaviour of the endpoints Rapport uses, without HTTP.

:class:`tests.sandboxes.square.SquareSandbox` serves this over HTTP. Customers and
bookings carry ``version`` and a stale one is a ``VERSION_MISMATCH``; custom attributes
need their definition; OAuth codes are single-use and tokens carry the scopes the seller
allowed; a personal access token carries them all.
"""

from __future__ import annotations

import copy
import secrets
import string
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.sandboxes.openapi import contract

SPEC = "platforms/square/api.json"
STRING_SCHEMA = (
    "https://developer-production-s.squarecdn.com/schemas/v1/common.json#squareup.common.String"
)
ALL_SCOPES = None  # a personal access token carries every permission
TOKEN_LIFETIME = timedelta(days=30)
DEFAULT_CODES = {
    400: ("INVALID_REQUEST_ERROR", "BAD_REQUEST"),
    401: ("AUTHENTICATION_ERROR", "UNAUTHORIZED"),
    403: ("AUTHENTICATION_ERROR", "FORBIDDEN"),
    404: ("INVALID_REQUEST_ERROR", "NOT_FOUND"),
    409: ("INVALID_REQUEST_ERROR", "CONFLICT"),
    429: ("RATE_LIMIT_ERROR", "RATE_LIMITED"),
    500: ("API_ERROR", "INTERNAL_SERVER_ERROR"),
    502: ("API_ERROR", "BAD_GATEWAY"),
    503: ("API_ERROR", "SERVICE_UNAVAILABLE"),
    504: ("API_ERROR", "GATEWAY_TIMEOUT"),
}


class SquareError(Exception):
    """An answer in Square's error shape: ``{"errors": [{category, code, detail, field}]}``."""

    def __init__(self, status: int, code: str | None = None, detail: str = "", field: str = ""):
        category, default_code = DEFAULT_CODES.get(status, ("INVALID_REQUEST_ERROR", "BAD_REQUEST"))
        super().__init__(f"{status} {code or default_code}: {detail}")
        self.status = status
        self.error = {"category": category, "code": code or default_code, "detail": detail}
        if field:
            self.error["field"] = field


class SquareState:
    def __init__(
        self,
        *,
        merchant_id: str = "MLRAPPORT0001",
        location_id: str = "L9R0X9X5SGDBJ",
        application_id: str = "sandbox-sq0idb-rapport",
        application_secret: str | None = None,
        personal_access_token: str | None = None,
    ):
        self.merchant_id = merchant_id
        self.location_id = location_id
        self.application_id = application_id
        self.application_secret = application_secret or "sandbox-sq0csb-" + _token(40)
        self.personal_access_token = personal_access_token or "EAAA" + _token(40)
        self.contract = contract(SPEC)
        self.customers: dict[str, dict[str, Any]] = {}
        self.bookings: dict[str, dict[str, Any]] = {}
        self.definitions: dict[str, dict[str, Any]] = {}
        self.attributes: dict[tuple[str, str], dict[str, Any]] = {}
        self.subscriptions: list[dict[str, Any]] = []
        # The seller's main location: where a clinic without its own time zone and
        # language takes them from (change them to try another business).
        self.main_location: dict[str, Any] = {
            "id": location_id,
            "name": "Harbour Massage",
            "business_name": "Harbour Massage",
            "merchant_id": merchant_id,
            "status": "ACTIVE",
            "country": "US",
            "currency": "USD",
            "timezone": "UTC",
            "language_code": "en-US",
        }
        # How a second definition with the same key is refused: (status, error code).
        self.duplicate_definition: tuple[int, str] = (409, "CONFLICT")
        # Whose sample a test event is (TestWebhookSubscription): None, the merchant of the
        # spec's example for that event, a business no Rapport follows; set it to try one.
        self.test_event_merchant_id: str | None = None
        # Each test event delivered: event_type, url, body, status (None: no answer), answer.
        self.test_events: list[dict[str, Any]] = []
        self._tokens: dict[str, dict[str, Any]] = {
            self.personal_access_token: {"scopes": ALL_SCOPES, "personal": True, "expires": None}
        }
        self._refresh_tokens: dict[str, dict[str, Any]] = {}
        self._codes: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()

    # --- seeding and acting as the seller --------------------------------------------

    def seed_customer(
        self,
        *,
        id: str | None = None,
        given_name: str | None = "Sam",
        email_address: str | None = "sam@example.com",
        note: str | None = None,
        **other: Any,
    ) -> dict[str, Any]:
        now = rfc3339_now()
        customer = {
            "id": id or _id(26),
            "created_at": now,
            "updated_at": now,
            "given_name": given_name,
            "email_address": email_address,
            "note": note,
            "creation_source": "DIRECTORY",
            "preferences": {"email_unsubscribed": False},
            "version": 0,
            **other,
        }
        customer = {key: value for key, value in customer.items() if value is not None}
        with self._lock:
            self.customers[customer["id"]] = customer
        return copy.deepcopy(customer)

    def seed_booking(
        self,
        *,
        customer_id: str,
        start_at: datetime | str,
        duration_minutes: int = 60,
        status: str = "ACCEPTED",
        team_member_id: str = "TMdanaRapport01",
        seller_note: str = "",
        segments: list[dict[str, Any]] | None = None,
        id: str | None = None,
        location_id: str | None = None,
    ) -> dict[str, Any]:
        now = rfc3339_now()
        if segments is None:
            segments = [
                {
                    "duration_minutes": duration_minutes,
                    "team_member_id": team_member_id,
                    "service_variation_id": "T3WUWYFJOVW2EU6XGRU5YG4A",
                    "service_variation_version": 1605808735978,
                }
            ]
        booking = {
            "id": id or _id(14, lower=True),
            "version": 0,
            "status": status,
            "created_at": now,
            "updated_at": now,
            "start_at": _timestamp(start_at),
            "location_id": location_id or self.location_id,
            "customer_id": customer_id,
            "customer_note": "",
            "seller_note": seller_note,
            "appointment_segments": copy.deepcopy(segments),
        }
        with self._lock:
            self.bookings[booking["id"]] = booking
        return copy.deepcopy(booking)

    def update_booking(self, booking_id: str, **changes: Any) -> dict[str, Any]:
        """Change a booking as the seller would in the Square Dashboard (a new version)."""
        with self._lock:
            booking = self.bookings[booking_id]
            if "start_at" in changes:
                changes["start_at"] = _timestamp(changes["start_at"])
            booking.update(changes)
            _bump(booking)
            return copy.deepcopy(booking)

    def update_customer(self, customer_id: str, **changes: Any) -> dict[str, Any]:
        """Change a customer profile as the therapist would (a new version)."""
        with self._lock:
            customer = self.customers[customer_id]
            customer.update(changes)
            _bump(customer)
            return copy.deepcopy(customer)

    def customer(self, customer_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.customers[customer_id])

    def booking(self, booking_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.bookings[booking_id])

    def custom_attribute(self, customer_id: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            found = self.attributes.get((customer_id, key))
            return copy.deepcopy(found) if found else None

    # --- OAuth as the seller ----------------------------------------------------------

    def authorize(self, scopes: Iterable[str], *, redirect_uri: str | None = None) -> str:
        """The code Square hands the redirect URL once the seller allows ``scopes``."""
        code = "sandbox-sq0cgb-" + _token(22)
        with self._lock:
            self._codes[code] = {"scopes": frozenset(scopes), "redirect_uri": redirect_uri}
        return code

    def revoke(self, token: str) -> None:
        """The seller disconnects Rapport: the grant behind ``token`` stops working, its
        refresh token and every access token issued from it."""
        with self._lock:
            refresh = self._tokens.get(token, {}).get("refresh_token", token)
            for record in self._tokens.values():
                if record.get("refresh_token") == refresh:
                    record["revoked"] = True
            for store in (self._tokens, self._refresh_tokens):
                if token in store:
                    store[token]["revoked"] = True
            if refresh in self._refresh_tokens:
                self._refresh_tokens[refresh]["revoked"] = True

    def expire(self, token: str) -> None:
        with self._lock:
            self._tokens[token]["expires"] = datetime.now(UTC) - timedelta(seconds=1)

    def scopes_of(self, token: str) -> frozenset[str] | None:
        with self._lock:
            return self._tokens[token]["scopes"]

    # --- endpoints (called with the lock held) ----------------------------------------

    def _retrieve_booking(self, *, booking_id: str, **_: Any) -> tuple[int, dict]:
        return 200, {"booking": copy.deepcopy(self._find(self.bookings, booking_id)), "errors": []}

    def _update_booking(self, *, booking_id: str, body: dict, **_: Any) -> tuple[int, dict]:
        booking = self._find(self.bookings, booking_id)
        changes = dict(body["booking"])
        _check_version(booking, changes.pop("version", None))
        booking.update({key: value for key, value in changes.items() if value is not None})
        _bump(booking)
        return 200, {"booking": copy.deepcopy(booking), "errors": []}

    def _create_booking(self, *, body: dict, **_: Any) -> tuple[int, dict]:
        wanted = body["booking"]
        for name in ("start_at", "customer_id", "location_id", "appointment_segments"):
            if not wanted.get(name):
                raise SquareError(
                    400,
                    "MISSING_REQUIRED_PARAMETER",
                    f"booking.{name} is missing",
                    field=f"booking.{name}",
                )
        booking = self.seed_booking(
            customer_id=wanted["customer_id"],
            start_at=wanted["start_at"],
            segments=wanted["appointment_segments"],
            seller_note=wanted.get("seller_note") or "",
            location_id=wanted["location_id"],
        )
        return 200, {"booking": booking, "errors": []}

    def _retrieve_location(self, *, location_id: str, **_: Any) -> tuple[int, dict]:
        if location_id not in ("main", self.main_location["id"]):
            raise SquareError(404, "NOT_FOUND", f"no location {location_id}")
        return 200, {"location": copy.deepcopy(self.main_location)}

    def _retrieve_customer(self, *, customer_id: str, **_: Any) -> tuple[int, dict]:
        return 200, {"customer": copy.deepcopy(self._find(self.customers, customer_id))}

    def _update_customer(self, *, customer_id: str, body: dict, **_: Any) -> tuple[int, dict]:
        customer = self._find(self.customers, customer_id)
        changes = dict(body)
        _check_version(customer, changes.pop("version", None))
        for name, value in changes.items():
            if value is None or value == "":
                customer.pop(name, None)
            else:
                customer[name] = value
        _bump(customer)
        return 200, {"customer": copy.deepcopy(customer)}

    def _create_definition(self, *, body: dict, **_: Any) -> tuple[int, dict]:
        wanted = body["custom_attribute_definition"]
        key = wanted.get("key")
        if not key:
            raise SquareError(
                400,
                "MISSING_REQUIRED_PARAMETER",
                "key is required",
                field="custom_attribute_definition.key",
            )
        if (wanted.get("schema") or {}).get("$ref") != STRING_SCHEMA:
            raise SquareError(
                400,
                "INVALID_VALUE",
                "this sandbox knows the String schema only",
                field="custom_attribute_definition.schema",
            )
        visibility = wanted.get("visibility") or "VISIBILITY_HIDDEN"
        for name in ("name", "description"):
            if visibility != "VISIBILITY_HIDDEN" and not wanted.get(name):
                raise SquareError(
                    400,
                    "MISSING_REQUIRED_PARAMETER",
                    f"{name} is required for {visibility}",
                    field=f"custom_attribute_definition.{name}",
                )
        if key in self.definitions:
            # Square does not document this answer (handlers/square/); tests try both
            # plausible ones through ``duplicate_definition``.
            status, code = self.duplicate_definition
            raise SquareError(status, code, f"a definition with key {key!r} already exists")
        now = rfc3339_now()
        self.definitions[key] = {
            **wanted,
            "visibility": visibility,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        return 200, {"custom_attribute_definition": copy.deepcopy(self.definitions[key])}

    def _retrieve_definition(self, *, key: str, **_: Any) -> tuple[int, dict]:
        definition = self.definitions.get(key)
        if definition is None:
            raise SquareError(404, "NOT_FOUND", f"no custom attribute definition {key!r}")
        return 200, {"custom_attribute_definition": copy.deepcopy(definition)}

    def _upsert_attribute(
        self, *, customer_id: str, key: str, body: dict, **_: Any
    ) -> tuple[int, dict]:
        self._find(self.customers, customer_id)
        definition = self.definitions.get(key)
        if definition is None:
            raise SquareError(404, "NOT_FOUND", f"no custom attribute definition {key!r}")
        wanted = body["custom_attribute"]
        if not isinstance(wanted.get("value"), str):
            raise SquareError(
                400, "EXPECTED_STRING", "the value must be a string", field="custom_attribute.value"
            )
        now = rfc3339_now()
        current = self.attributes.get((customer_id, key))
        if current is None:
            current = {"key": key, "version": 0, "created_at": now}
        _check_version(current, wanted.get("version"))
        current.update(value=wanted["value"], visibility=definition["visibility"], updated_at=now)
        current["version"] += 1
        self.attributes[(customer_id, key)] = current
        return 200, {"custom_attribute": copy.deepcopy(current)}

    def _create_subscription(self, *, body: dict, **_: Any) -> tuple[int, dict]:
        wanted = body["subscription"]
        known = self._event_types()
        for event_type in wanted.get("event_types") or ():
            if event_type not in known:
                raise SquareError(
                    400,
                    "INVALID_VALUE",
                    f"unknown event type {event_type!r}",
                    field="subscription.event_types",
                )
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")
        subscription = {
            "id": "wbhk_" + uuid.uuid4().hex,
            "enabled": True,
            "api_version": "2025-08-20",
            **wanted,
            "signature_key": _token(22),
            "created_at": now,
            "updated_at": now,
        }
        self.subscriptions.append(subscription)
        return 200, {"subscription": copy.deepcopy(subscription)}

    def _test_event(self, subscription_id: str, body: dict) -> tuple[dict, dict]:
        """TestWebhookSubscription's checks: the subscription, and an event type it has
        (the spec: "must be contained in the list of event types in the Subscription");
        the subscription and the sample event to deliver: the spec's example of that
        event, with a fresh event id (Square's example reuses the test result's id)."""
        found = [s for s in self.subscriptions if s["id"] == subscription_id]
        if not found:
            raise SquareError(404, "NOT_FOUND", f"no subscription {subscription_id}")
        subscription = found[0]
        event_type = (body or {}).get("event_type")
        # Square does not say which event it sends without one; this stand-in asks for one.
        if event_type not in (subscription.get("event_types") or ()):
            raise SquareError(400, "INVALID_VALUE", f"event type {event_type!r} is not one "
                              "of the subscription's event types", field="event_type")
        schemas = self.contract.spec["components"]["schemas"].values()
        (example,) = [s["example"] for s in schemas
                      if s.get("x-webhook", {}).get("event") == event_type]
        event = copy.deepcopy(example)
        event["event_id"] = str(uuid.uuid4())
        event["created_at"] = rfc3339_now()
        if self.test_event_merchant_id:
            event["merchant_id"] = self.test_event_merchant_id
        return subscription, event

    def _obtain_token(self, *, body: dict, **_: Any) -> tuple[int, dict]:
        if (body.get("client_id"), body.get("client_secret")) != (
            self.application_id,
            self.application_secret,
        ):
            raise SquareError(401, "UNAUTHORIZED", "Not Authorized")
        grant = body.get("grant_type")
        if grant == "authorization_code":
            record = self._codes.pop(body.get("code") or "", None)
            if record is None:
                raise SquareError(
                    400, "INVALID_VALUE", "the code is unknown or already used", field="code"
                )
            if record["redirect_uri"] and record["redirect_uri"] != body.get("redirect_uri"):
                raise SquareError(
                    400,
                    "INVALID_VALUE",
                    "redirect_uri differs from authorize",
                    field="redirect_uri",
                )
            refresh = "EQAA" + _token(60)
            self._refresh_tokens[refresh] = {"scopes": record["scopes"]}
        elif grant == "refresh_token":
            refresh = body.get("refresh_token") or ""
            record = self._refresh_tokens.get(refresh)
            if record is None or record.get("revoked"):
                raise SquareError(401, "ACCESS_TOKEN_REVOKED", "The refresh token is not valid.")
        else:
            raise SquareError(
                400, "INVALID_VALUE", f"unsupported grant_type {grant!r}", field="grant_type"
            )
        access = "EAAA" + _token(60)
        expires = datetime.now(UTC).replace(microsecond=0) + TOKEN_LIFETIME
        self._tokens[access] = {
            "scopes": record["scopes"],
            "expires": expires,
            "refresh_token": refresh,
        }
        return 200, {
            "access_token": access,
            "token_type": "bearer",
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "merchant_id": self.merchant_id,
            "refresh_token": refresh,
            "short_lived": False,
        }

    def _find(self, store: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
        if key not in store:
            raise SquareError(404, "NOT_FOUND", f"{key} was not found")
        return store[key]

    def _event_types(self) -> set[str]:
        schemas = self.contract.spec["components"]["schemas"].values()
        return {s["x-webhook"]["event"] for s in schemas if "x-webhook" in s}


def _check_version(record: dict[str, Any], version: Any) -> None:
    if version is not None and version != record["version"]:
        raise SquareError(
            409,
            "VERSION_MISMATCH",
            f"version {version} is stale; the current version is {record['version']}",
            field="version",
        )


def _bump(record: dict[str, Any]) -> None:
    record["version"] += 1
    record["updated_at"] = rfc3339_now()


def rfc3339_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(value: datetime | str) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _id(size: int, *, lower: bool = False) -> str:
    alphabet = (string.ascii_lowercase if lower else string.ascii_uppercase) + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(size))


def _token(size: int) -> str:
    return secrets.token_urlsafe(size)[:size]
