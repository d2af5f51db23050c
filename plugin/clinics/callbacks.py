"""Callback URLs: which ones a clinic may have, and the only way Rapport reaches them.

A clinic on a platform whose notes go to a callback (``NotePlace.CALLBACK``) gives the
URL Rapport POSTs each write-back to. Anyone who can set that URL could otherwise make
Rapport post into its own network (the cloud's metadata service, an admin port on
127.0.0.1) and read the answer back through the stored error. So (docs/security.md):

- the URL is ``https`` in production (``http`` too in development), with a host;
- its host must not be, nor resolve to, a loopback, private, shared, link-local,
  multicast, reserved or otherwise non-global address, IPv4 or IPv6 (IPv4 inside IPv6
  included). This is checked when the URL is set and again at every delivery, on the
  very address connected to, so a DNS answer changed in between cannot sneak in;
- ``ALLOW_PRIVATE_CALLBACKS`` lifts the address rule for development and tests (a
  receiver on this machine); it is on by default in development and refused in
  production;
- no proxy from the environment is used, redirects are not followed, the answer's body
  is never read, and what is kept of a refusal is its status and reason phrase.

The console and ``rapport clinic`` change a clinic's callback through
:func:`change_url` and :func:`rotate_secret`, which apply the same rules.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import current_app
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from handlers.base import NotePlace, PermanentError, Platform
from plugin.clinics import records
from plugin.clinics.platforms import platform_of
from plugin.store import database
from plugin.store.models import Clinic

NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class CallbackError(ValueError):
    """A clinic's callback cannot be changed as asked; the message says why."""


class CallbackRefused(PermanentError):
    """A delivery was not made: the callback's address is one Rapport does not post to."""


def _embedded(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list:
    """The address and any IPv4 address it carries (mapped, 6to4, Teredo, NAT64)."""
    found = [ip]
    if ip.version == 6:
        found += [inner for inner in (ip.ipv4_mapped, ip.sixtofour) if inner]
        if ip.teredo:
            found += list(ip.teredo)
        if any(ip in network for network in NAT64):
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def address_refusal(address: str) -> str | None:
    """Why Rapport does not post to this IP address, or None when it may."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    for candidate in _embedded(ip):
        if not candidate.is_global or candidate.is_multicast:
            return (f"{address} is a loopback, private, link-local, multicast or reserved "
                    "address")
    return None


def _resolved(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``host`` itself when it is one)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return [host]
    except ValueError:
        pass
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise OSError(f"{host} does not resolve ({error})") from None
    return list(dict.fromkeys(str(answer[4][0]) for answer in answers))


def destination(host: str, port: int) -> str:
    """The address to connect to for ``host``: every address it resolves to must be
    allowed (one bad answer among good ones is how a rebinding attack hides), else
    :class:`CallbackRefused`; OSError when it does not resolve."""
    addresses = _resolved(host, port)
    for address in addresses:
        reason = address_refusal(address)
        if reason:
            shown = host if address == host else f"{host} ({address})"
            raise CallbackRefused(f"Rapport does not post to {shown}: {reason.split(' ', 1)[1]}")
    return addresses[0]


def url_refusal(url: str, config: Any = None) -> str | None:
    """Why ``url`` cannot be a callback URL under the installation's settings, or None.
    A host name is resolved: one that resolves to an address Rapport does not post to is
    refused; one that does not resolve yet is accepted, and checked at each delivery."""
    config = current_app.config if config is None else config
    parts = urlsplit(url or "")
    production = config["ENV"] == "production"
    schemes = ("https",) if production else ("http", "https")
    if parts.scheme not in schemes or not parts.hostname:
        wanted = "an https URL" if production else "an http(s) URL"
        return f"the callback URL must be {wanted} with a host, e.g. https://example.com/hook"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "the callback URL's port is not a number between 0 and 65535"
    if config["ALLOW_PRIVATE_CALLBACKS"]:
        return None
    try:
        destination(parts.hostname, port)
    except CallbackRefused as error:
        return str(error)
    except OSError:
        return None  # not resolving yet (a receiver still being set up): checked at delivery
    return None


def check_url(url: str) -> str:
    """``url``, if a clinic may have it as its callback; :class:`CallbackError` if not."""
    reason = url_refusal(url)
    if reason:
        raise CallbackError(reason)
    return url


# --- the guarded connection --------------------------------------------------------------


class _Guarded:
    """Connects only to an address :func:`destination` allows, checked on each new
    connection; TLS still verifies the certificate against the URL's host name."""

    def _new_conn(self):
        name = self._dns_host
        self._dns_host = destination(name.rstrip("."), self.port)
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


class _GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool,
                                                   "https": _GuardedHTTPSPool}


def session() -> requests.Session:
    """What write-backs to a callback URL are made through (``credentials["http"]``)."""
    http = requests.Session()
    http.trust_env = False  # an environment proxy would connect on Rapport's behalf, unchecked
    if not current_app.config["ALLOW_PRIVATE_CALLBACKS"]:
        adapter = _GuardedAdapter()
        http.mount("http://", adapter)
        http.mount("https://", adapter)
    return http


# --- changing a clinic's callback ----------------------------------------------------------


@dataclass(frozen=True)
class Changed:
    clinic_id: int
    callback_url: str
    new_secret: str | None = None


def _callback_clinic(db, key: str) -> tuple[Clinic, Platform]:
    clinic = records.by_key(db, key)
    if clinic is None:
        raise CallbackError(f"no clinic with key {key!r}; `rapport clinic list` shows them")
    platform = platform_of(clinic)
    if NotePlace.CALLBACK not in platform.capabilities.note_places:
        raise CallbackError(f"{platform.title} clinics have no callback URL: Rapport writes "
                            f"its notes into {platform.title} itself")
    return clinic, platform


def change_url(key: str, url: str) -> Changed:
    """Give the clinic ``key`` a new callback URL, checked like a new clinic's."""
    check_url(url)
    with database.session() as db:
        clinic, platform = _callback_clinic(db, key)
        values = platform.with_callback_url(records.credentials(clinic), url)
        records.store_credentials(clinic, values)
        return Changed(clinic_id=clinic.id, callback_url=url)


def rotate_secret(key: str, *, retire_old: bool = False) -> Changed:
    """A new secret for signing the clinic's callbacks. Until ``retire_old``, each
    callback carries a signature with the new secret and one with each older one
    (Standard Webhooks allows several), so the receiver can switch at its own pace."""
    with database.session() as db:
        clinic, platform = _callback_clinic(db, key)
        values, secret = platform.with_new_callback_secret(records.credentials(clinic),
                                                           retire_old=retire_old)
        records.store_credentials(clinic, values)
        return Changed(clinic_id=clinic.id, callback_url=platform.callback_url(values) or "",
                       new_secret=secret)


def checked_credentials(platform: Platform, credentials: dict[str, Any]) -> None:
    """Refuse a new clinic's callback URL that the rules do not allow (CallbackError)."""
    if NotePlace.CALLBACK in platform.capabilities.note_places:
        url = platform.callback_url(credentials)
        if url:
            check_url(url)


def for_delivery(platform: Platform, credentials: dict[str, Any]) -> dict[str, Any]:
    """The credentials a write-back is made with: through :func:`session` for a
    platform whose notes go to a callback, still counted like every call to the clinic
    (the hooks of the session the seam gave)."""
    if NotePlace.CALLBACK not in platform.capabilities.note_places:
        return credentials
    guarded = session()
    given = credentials.get("http")
    if given is not None:
        guarded.hooks["response"].extend(given.hooks["response"])
    return {**credentials, "http": guarded}
