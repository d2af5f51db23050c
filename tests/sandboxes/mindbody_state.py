"""What the local Mindbody holds and how it answers: sites (activated or not), staff,
clients, appointments with their notes, user tokens and webhook subscriptions.

Each answer follows Mindbody's reference (cited in tests/sandboxes/mindbody.py); a
request the reference refuses raises :class:`MindbodyError`, which the server turns into
Mindbody's error shape: ``{"Error": {"Code", "Message"}}`` for the Public API,
``{"errors": [{"errorCode", "errorType", "errorMessage"}]}`` for the Webhooks API.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

EVENT_TYPES = frozenset({
    "appointmentBooking.created", "appointmentBooking.updated", "appointmentBooking.cancelled",
    "appointmentAddOn.created", "appointmentAddOn.deleted", "clientArrival.created",
    "client.created", "client.updated", "client.deactivated",
})
STATUSES = ("Requested", "Booked", "Confirmed", "Arrived", "Completed", "NoShow", "Cancelled",
            "LateCancelled")
# Fields of UpdateClientRequest.Client this stand-in accepts (the reference's Client model).
CLIENT_FIELDS = {"Id": str, "Notes": str, "FirstName": str, "LastName": str, "Email": str,
                 "MiddleName": str, "MobilePhone": str, "SendAccountEmails": bool}
UPDATE_CLIENT = {"Client": dict, "Test": bool, "CrossRegionalUpdate": bool, "NewId": str}
UPDATE_APPOINTMENT = {"AppointmentId": int, "Notes": str, "SendEmail": bool, "Test": bool,
                      "Execute": str, "StartDateTime": str, "EndDateTime": str, "StaffId": int,
                      "SessionTypeId": int, "ApplyPayment": bool}
CREATE_SUBSCRIPTION = {"eventIds": list, "eventSchemaVersion": (int, float), "referenceId": str,
                       "webhookUrl": str}
PATCH_SUBSCRIPTION = {**CREATE_SUBSCRIPTION, "status": str}


class MindbodyError(Exception):
    def __init__(self, status: int, code: str, message: str, *, webhooks: bool = False):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.webhooks = status, code, message, webhooks

    def body(self) -> dict[str, Any]:
        if self.webhooks:
            return {"errors": [{"errorCode": str(self.status * 100000 + 1),
                                "errorType": self.code, "errorMessage": self.message}]}
        return {"Error": {"Code": self.code, "Message": self.message}}


def invalid(message: str, *, webhooks: bool = False) -> MindbodyError:
    return MindbodyError(400, "InvalidParameter", message, webhooks=webhooks)


def check_fields(body: Any, allowed: dict[str, Any], *, required: tuple[str, ...] = (),
                 where: str = "body", webhooks: bool = False) -> dict[str, Any]:
    """Refuse a body that is not an object, misses a required field, has a field the
    reference does not list, or a value of the wrong type."""
    if not isinstance(body, dict):
        raise invalid(f"{where} must be a JSON object", webhooks=webhooks)
    for name in required:
        if name not in body:
            raise invalid(f"{where}.{name} is required", webhooks=webhooks)
    for name, value in body.items():
        if name not in allowed:
            raise invalid(f"{where}.{name} is not a known field", webhooks=webhooks)
        kind = allowed[name]
        if value is not None and (not isinstance(value, kind) or (
                isinstance(value, bool) and kind is not bool)):
            raise invalid(f"{where}.{name} has the wrong type", webhooks=webhooks)
    return body


def local(when: datetime) -> str:
    """A time as the Public API writes it: the site's local time, without an offset (the
    stand-in's sites are on UTC)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class MindbodyState:
    """The records behind the stand-in, shared by its HTTP handlers and the tests."""

    def __init__(self, *, api_key: str = "mb-public-api-key",
                 webhooks_api_key: str = "mb-webhooks-api-key",
                 source_name: str = "RapportSource",
                 source_password: str = "source-secret"):  # noqa: S107 - a stand-in's
        self._lock = threading.RLock()
        self.api_key, self.webhooks_api_key = api_key, webhooks_api_key
        self.source_name, self.source_password = source_name, source_password
        self.sites: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.token_lifetime = timedelta(days=7)
        self._ids = itertools.count(1001)

    # --- seeding and acting as the business -------------------------------------------

    def seed_site(self, site_id: int | str = -99, *, activated: bool = True) -> dict[str, Any]:
        site = {"id": str(site_id), "activated": activated,
                "activation_code": secrets.token_hex(8), "staff_logins": {},
                "staff": {"7": {"Id": 7, "FirstName": "Dana", "LastName": "Ruiz"}},
                "clients": {}, "appointments": {}}
        with self._lock:
            self.sites[str(site_id)] = site
        return site

    def activate(self, site_id: int | str) -> None:
        with self._lock:
            self._site(site_id)["activated"] = True

    def deactivate(self, site_id: int | str) -> None:
        """The owner removes the developer account's access to the site (Mindbody then
        refuses every call for it but the activation code)."""
        with self._lock:
            self._site(site_id)["activated"] = False

    def add_staff_login(self, site_id: int | str, username: str, password: str) -> None:
        with self._lock:
            self._site(site_id)["staff_logins"][username] = password

    def seed_client(self, site_id: int | str = -99, *, first_name: str = "Sam",
                    last_name: str = "Lee", email: str | None = "sam@example.com",
                    notes: str = "", client_id: str | None = None) -> dict[str, Any]:
        client_id = client_id or str(100000000 + next(self._ids))
        client = {"Id": client_id, "UniqueId": next(self._ids), "FirstName": first_name,
                  "LastName": last_name, "Email": email, "Notes": notes,
                  "SendAccountEmails": True, "Status": "Active", "Active": True}
        with self._lock:
            self._site(site_id)["clients"][client_id] = client
        return dict(client)

    def seed_appointment(self, site_id: int | str = -99, *, client_id: str,
                         start: datetime, minutes: int = 60, status: str = "Booked",
                         staff_id: int = 7, notes: str = "",
                         name: str = "Deep tissue 60") -> dict[str, Any]:
        appointment_id = next(self._ids)
        staff = self._site(site_id)["staff"][str(staff_id)]
        record = {"Id": appointment_id, "Status": status, "StartDateTime": local(start),
                  "EndDateTime": local(start + timedelta(minutes=minutes)), "Duration": minutes,
                  "Notes": notes, "StaffId": staff_id, "Staff": dict(staff),
                  "ClientId": client_id, "LocationId": 1, "SessionTypeId": 61,
                  "Name": name, "StaffRequested": False, "FirstAppointment": False}
        with self._lock:
            self._site(site_id)["appointments"][appointment_id] = record
        return dict(record)

    def client(self, site_id: int | str, client_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._site(site_id)["clients"][str(client_id)])

    def appointment(self, site_id: int | str, appointment_id: int | str) -> dict[str, Any]:
        with self._lock:
            return dict(self._site(site_id)["appointments"][int(appointment_id)])

    def edit_client(self, site_id: int | str, client_id: str, **values: Any) -> None:
        """A staff member saves the client in Mindbody."""
        with self._lock:
            self._site(site_id)["clients"][str(client_id)].update(values)

    def edit_appointment(self, site_id: int | str, appointment_id: int | str,
                         **values: Any) -> None:
        with self._lock:
            self._site(site_id)["appointments"][int(appointment_id)].update(values)

    def revoke_tokens(self, site_id: int | str | None = None) -> None:
        """Every user token stops working (the owner removed the integration, say)."""
        with self._lock:
            for record in self.tokens.values():
                if site_id is None or record["site_id"] == str(site_id):
                    record["revoked"] = True

    # --- the Public API ------------------------------------------------------------------

    def public_site(self, headers: dict[str, str], *, activated: bool = True) -> dict[str, Any]:
        if not headers.get("api-key"):
            raise MindbodyError(401, "DeniedAccess", "An Api-Key header is required.")
        if headers["api-key"] != self.api_key:
            raise MindbodyError(401, "DeniedAccess", "The Api-Key is not valid.")
        site_id = headers.get("siteid")
        if not site_id:
            raise MindbodyError(400, "InvalidParameter", "A SiteId header is required.")
        with self._lock:
            site = self.sites.get(site_id)
        if site is None:
            raise MindbodyError(400, "InvalidParameter", f"Site {site_id} does not exist.")
        if activated and not site["activated"]:
            raise MindbodyError(403, "DeniedAccess",
                                f"Site {site_id} has not activated this developer account.")
        return site

    def staff_token(self, site: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        value = headers.get("authorization") or ""
        token = value.split(" ", 1)[1] if value.lower().startswith("bearer ") else value
        with self._lock:
            record = self.tokens.get(token)
        if record is None or record["site_id"] != site["id"]:
            raise MindbodyError(401, "DeniedAccess", "A valid staff user token is required.")
        if record.get("revoked") or record["expires"] <= datetime.now(UTC):
            raise MindbodyError(401, "DeniedAccess", "The staff user token has expired.")
        return record

    def issue_token(self, site: dict[str, Any], body: Any) -> dict[str, Any]:
        check_fields(body, {"Username": str, "Password": str}, required=("Username", "Password"))
        username, password = body["Username"], body["Password"]
        owner = (username == "_" + self.source_name and password == self.source_password)
        if not owner and site["staff_logins"].get(username) != password:
            raise MindbodyError(401, "InvalidLoginCredentials", "Invalid username or password.")
        token = secrets.token_urlsafe(24)
        expires = datetime.now(UTC) + self.token_lifetime
        with self._lock:
            self.tokens[token] = {"site_id": site["id"], "expires": expires, "username": username}
        user_type = "Owner" if owner else "Staff"
        return {"TokenType": "Bearer", "AccessToken": token,
                "Expires": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "User": {"Id": 0 if owner else 7, "FirstName": "Rapport", "LastName": "",
                         "Type": user_type}}

    def clients(self, site: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        wanted = {value for ids in query.get("clientids", []) for value in ids.split(",")}
        with self._lock:
            found = [dict(c) for c in site["clients"].values() if not wanted or c["Id"] in wanted]
        return {"PaginationResponse": _page(query, len(found)), "Clients": found}

    def update_client(self, site: dict[str, Any], body: Any) -> dict[str, Any]:
        check_fields(body, UPDATE_CLIENT, required=("Client",))
        client = check_fields(body["Client"], CLIENT_FIELDS, required=("Id",), where="Client")
        with self._lock:
            record = site["clients"].get(client["Id"])
            if record is None:
                raise MindbodyError(400, "ClientNotFound", f"Client {client['Id']} not found.")
            if not body.get("Test"):
                record.update({k: v for k, v in client.items() if k != "Id"})
            return {"Client": dict(record)}

    def staff_appointments(self, site: dict[str, Any],
                           query: dict[str, list[str]]) -> dict[str, Any]:
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        start = (query.get("startdate") or [today])[0][:10]
        end = (query.get("enddate") or [start])[0][:10]
        ids = {value for ids in query.get("appointmentids", []) for value in ids.split(",")}
        with self._lock:
            found = [dict(a) for a in site["appointments"].values()
                     if start <= a["StartDateTime"][:10] <= end
                     and (not ids or str(a["Id"]) in ids)]
        return {"PaginationResponse": _page(query, len(found)), "Appointments": found}

    def update_appointment(self, site: dict[str, Any], body: Any) -> dict[str, Any]:
        check_fields(body, UPDATE_APPOINTMENT, required=("AppointmentId",))
        with self._lock:
            record = site["appointments"].get(body["AppointmentId"])
            if record is None:
                raise MindbodyError(400, "InvalidParameter",
                                    f"Appointment {body['AppointmentId']} not found.")
            if not body.get("Test") and "Notes" in body:
                record["Notes"] = body["Notes"]
            return {"Appointment": dict(record)}

    def activation_code(self, site: dict[str, Any]) -> dict[str, Any]:
        code = site["activation_code"]
        return {"ActivationCode": code, "ActivationLink":
                f"https://clients.mindbodyonline.com/ActivationLink/ActivateLink?code={code}"}

    # --- the Webhooks API ----------------------------------------------------------------

    def webhooks_key(self, headers: dict[str, str]) -> None:
        if not headers.get("api-key"):
            raise MindbodyError(401, "missingAPIKeyHeader", "An API-Key Header was expected in "
                                "the request but was not provided.", webhooks=True)
        if headers["api-key"] != self.webhooks_api_key:
            raise MindbodyError(401, "invalidAPIKey", "The API-Key is not a Webhooks API key.",
                                webhooks=True)

    def create_subscription(self, body: Any) -> dict[str, Any]:
        check_fields(body, CREATE_SUBSCRIPTION, required=("eventIds", "eventSchemaVersion",
                                                          "webhookUrl"), webhooks=True)
        self._check_subscription(body)
        now = datetime.now(UTC).isoformat()
        record = {"subscriptionId": str(uuid.uuid4()), "status": "PendingActivation",
                  "subscriptionCreationDateTime": now, "statusChangeDate": None,
                  "statusChangeMessage": None, "statusChangeUser": None,
                  "eventIds": list(body["eventIds"]), "eventSchemaVersion": 1,
                  "referenceId": body.get("referenceId"), "webhookUrl": body["webhookUrl"],
                  "messageSignatureKey": secrets.token_urlsafe(32)}
        with self._lock:
            self.subscriptions[record["subscriptionId"]] = record
        return dict(record)

    def patch_subscription(self, subscription_id: str, body: Any) -> dict[str, Any]:
        check_fields(body, PATCH_SUBSCRIPTION, webhooks=True)
        self._check_subscription(body)
        if body.get("status") not in (None, "Active", "DeactivatedByUser"):
            raise invalid(f"status {body['status']!r} cannot be set", webhooks=True)
        with self._lock:
            record = self._subscription(subscription_id)
            record.update({k: v for k, v in body.items() if k != "eventSchemaVersion"})
            if "status" in body:
                record["statusChangeDate"] = datetime.now(UTC).isoformat()
            return _without_key(record)

    def delete_subscription(self, subscription_id: str) -> dict[str, Any]:
        with self._lock:
            record = self._subscription(subscription_id)
            record["status"] = "DeactivatedByUser"
        return {"subscriptionId": subscription_id, "referenceId": record["referenceId"],
                "message": "Subscription deactivated successfully.",
                "deactivationDateTime": datetime.now(UTC).isoformat()}

    def list_subscriptions(self) -> dict[str, Any]:
        with self._lock:
            return {"items": [_without_key(r) for r in self.subscriptions.values()]}

    def get_subscription(self, subscription_id: str) -> dict[str, Any]:
        with self._lock:
            return _without_key(self._subscription(subscription_id))

    def _check_subscription(self, body: dict[str, Any]) -> None:
        unknown = [e for e in body.get("eventIds") or () if e not in EVENT_TYPES]
        if unknown or body.get("eventIds") == []:
            raise invalid(f"unknown eventIds: {unknown}", webhooks=True)
        if "eventSchemaVersion" in body and body["eventSchemaVersion"] != 1:
            raise invalid("eventSchemaVersion must be 1", webhooks=True)
        url = body.get("webhookUrl")
        # Mindbody wants HTTPS; the stand-in also lets loopback URLs through for tests.
        if url is not None and not (url.startswith("https://") or url.startswith(
                ("http://127.0.0.1", "http://localhost"))):
            raise invalid("webhookUrl must be an HTTPS URL", webhooks=True)

    def _subscription(self, subscription_id: str) -> dict[str, Any]:
        record = self.subscriptions.get(subscription_id)
        if record is None:
            raise MindbodyError(404, "subscriptionNotFound",
                                f"No subscription {subscription_id}.", webhooks=True)
        return record

    def _site(self, site_id: int | str) -> dict[str, Any]:
        return self.sites[str(site_id)]


def _page(query: dict[str, list[str]], total: int) -> dict[str, Any]:
    limit = int((query.get("limit") or ["100"])[0])
    offset = int((query.get("offset") or ["0"])[0])
    return {"RequestedLimit": limit, "RequestedOffset": offset, "PageSize": min(limit, total),
            "TotalResults": total}


def _without_key(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "messageSignatureKey"}
