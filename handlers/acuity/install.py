"""Connecting an Acuity account: trying the credentials, the business's time zone, and the
clinic's webhooks registered through Acuity's Webhooks API (or removed again).

Acuity facts this module relies on, and where they are documented:

- ``GET /me`` answers the account: ``id``, ``email``, ``timezone`` (e.g.
  ``America/New_York``), ``name``… (specification, ``Me``): one cheap call that a wrong user
  ID or API key fails with 401. https://developers.acuityscheduling.com/reference/api-errors
- Dynamic webhooks: ``POST /webhooks`` ``{"event", "target"}`` answers
  ``{"id", "event", "target", "status": "active"}``; ``GET /webhooks`` lists them;
  ``DELETE /webhooks/:id`` ends one. Events: ``appointment.scheduled``,
  ``appointment.rescheduled``, ``appointment.canceled``, ``appointment.changed``,
  ``order.completed``. The target must be on port 443 or 80. "A maximum of 25 webhooks can
  be created per Acuity account. A 400 error will be returned when that limit is reached."
  https://developers.acuityscheduling.com/page/webhooks-webhooks-webhooks
- Using ``changed`` together with the specific actions "may lead to duplicate requests".
  https://developers.acuityscheduling.com/docs/webhooks

Which events: the three specific ones. ``changed`` alone would take one slot instead of
three, but every ``changed`` delivery about one appointment has the same body, hence the
same delivery id (Acuity sends no event id), so a cancellation after the booking would look
like a repeat of it. Rapport does not need the other changes ``changed`` reports (e-mail
edits, intake forms): it reads the appointment again before acting.

Not confirmed, and handled defensively:

- Webhook ``status`` values besides ``active``: only an ``active`` webhook (or one without
  a status) to the clinic's own URL is reused; others to that URL are replaced.
- What a webhook to the same target and event twice does: Rapport lists first and creates
  only what is missing, so connecting again never adds duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from handlers.acuity.api import NotFound, call, is_id
from handlers.base import ConnectProblem, PermanentError

EVENTS = ("appointment.scheduled", "appointment.rescheduled", "appointment.canceled")
WEBHOOK_LIMIT = 25


def account(credentials: Mapping[str, Any]) -> dict[str, Any]:
    """``GET /me``: the account the credentials open (one call)."""
    me = call(credentials, "GET", "/me")
    if not isinstance(me, dict):
        raise PermanentError("Acuity's /me did not answer an object")
    return me


def timezone_of(credentials: Mapping[str, Any]) -> str | None:
    zone = account(credentials).get("timezone")
    return zone.strip() if isinstance(zone, str) and zone.strip() else None


def check_target(url: str) -> None:
    """Refuse a URL Acuity cannot deliver to (https on 443 or http on 80 only)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    allowed = {"https": (None, 443), "http": (None, 80)}.get(parts.scheme)
    if not parts.hostname or allowed is None or port not in allowed:
        raise ConnectProblem(
            f"Acuity delivers webhooks only to port 443 (https) or 80 (http); {url} is "
            "neither: serve Rapport's RAPPORT_BASE_URL on one of them")


def subscribe(credentials: Mapping[str, Any], url: str) -> dict[str, Any]:
    """Register the clinic's webhook URL for :data:`EVENTS`; what to keep with the clinic's
    credentials: ``{"webhook_ids": [...], "webhook_url": url}``.

    Webhooks already registered for ``url`` are reused (connecting again adds nothing);
    others pointing at ``url`` (another event, or not active) are removed: the URL is the
    clinic's own, so only Rapport registered them.
    """
    check_target(url)
    listed = call(credentials, "GET", "/webhooks")
    listed = [w for w in listed if isinstance(w, Mapping)] if isinstance(listed, list) else []
    kept: dict[str, Any] = {}
    stale = []
    for webhook in listed:
        if webhook.get("target") != url:
            continue
        usable = webhook.get("status") in (None, "active") and webhook.get("event") in EVENTS
        if usable and webhook.get("event") not in kept:
            kept[webhook["event"]] = webhook.get("id")
        else:
            stale.append(webhook.get("id"))
    unsubscribe(credentials, stale)
    missing = [event for event in EVENTS if event not in kept]
    others = len(listed) - len(kept) - len(stale)
    if others + len(EVENTS) > WEBHOOK_LIMIT:
        raise ConnectProblem(
            f"the Acuity account already has {others} webhooks and allows {WEBHOOK_LIMIT}; "
            f"Rapport needs {len(EVENTS)}: remove unused ones, or add the clinic with "
            "--manual-webhooks and paste the URL in Acuity (Integrations → API → Webhooks)")
    for event in missing:
        try:
            created = call(credentials, "POST", "/webhooks", body={"event": event, "target": url})
        except PermanentError as refused:
            raise ConnectProblem(
                f"Acuity refused to register Rapport's webhook ({refused}); add the clinic "
                "with --manual-webhooks and paste the URL in Acuity (Integrations → API → "
                "Webhooks)") from None
        if not isinstance(created, Mapping) or created.get("id") is None:
            raise PermanentError("Acuity registered a webhook but answered no id")
        kept[event] = created["id"]
    return {"webhook_ids": [kept[event] for event in EVENTS], "webhook_url": url}


def unsubscribe(credentials: Mapping[str, Any], webhook_ids: Iterable[Any]) -> int:
    """End the webhooks with these ids (one call each); how many Acuity still had."""
    ended = 0
    for webhook_id in webhook_ids:
        if not is_id(str(webhook_id)):
            continue
        try:
            call(credentials, "DELETE", f"/webhooks/{webhook_id}")
        except NotFound:
            continue
        ended += 1
    return ended
