"""What a clinic admin gives Rapport when connecting a platform, and what they get back."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from flask import current_app

from handlers import generic
from plugin.clinics import NewClinic


class InstallError(ValueError):
    """The install cannot go on; the message names the missing or wrong option."""


FIELD_LABELS = (
    ("Clinic key:", "key"),
    ("Webhook URL:", "webhook_url"),
    ("Webhook secret:", "webhook_secret"),
    ("Callback URL:", "callback_url"),
    ("Callback signing secret:", "callback_secret"),
    ("Square notification URL:", "notification_url"),
)


def _http_url(value: str | None, option: str) -> str:
    parsed = urlparse(value or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InstallError(f"{option} must be an http(s) URL, e.g. https://example.com/hook")
    return value


def manual_credentials(platform: str, **options: str | None) -> dict[str, Any]:
    if platform == "generic":
        if not options.get("callback_url"):
            raise InstallError(
                "--callback-url is required for the generic platform: the URL where "
                "Rapport POSTs the client.alliance_updated event with the scores and note")
        return {
            "inbound_secrets": [generic.new_secret()],
            "outbound_secret": generic.new_secret(),
            "callback_url": _http_url(options["callback_url"], "--callback-url"),
        }
    if platform == "square":
        missing = [f"--{name.replace('_', '-')}" for name in
                   ("access_token", "webhook_signature_key", "notification_url")
                   if not options.get(name)]
        if missing:
            raise InstallError(
                f"{', '.join(missing)} required for Square's manual mode (or connect with "
                f"OAuth at {current_app.config['BASE_URL']}/connect/square)")
        return {
            "access_token": options["access_token"],
            "signature_keys": [options["webhook_signature_key"]],
            "notification_url": _http_url(options["notification_url"], "--notification-url"),
            "environment": current_app.config["SQUARE_ENVIRONMENT"],
        }
    raise InstallError(f"no install for platform {platform!r}")


def describe(created: NewClinic) -> dict[str, Any]:
    """The clinic key, webhook URL and secrets, for the admin to copy."""
    clinic, credentials = created.clinic, created.credentials
    result: dict[str, Any] = {"key": clinic.key, "name": clinic.name,
                              "platform": clinic.platform, "webhook_url": created.webhook_url}
    if clinic.platform == "generic":
        result.update(webhook_secret=credentials["inbound_secrets"][0],
                      callback_url=credentials["callback_url"],
                      callback_secret=credentials["outbound_secret"])
    if clinic.platform == "square":
        result.update(notification_url=credentials["notification_url"])
    return result


def next_steps(created: NewClinic) -> list[str]:
    clinic = created.clinic
    if clinic.platform == "generic":
        return [
            "",
            "Next: in your booking system (or middleware), send Standard Webhooks to the",
            "webhook URL, signed with the webhook secret. Verify Rapport's callbacks with",
            "the callback signing secret. Keep both secrets private.",
        ]
    return [
        "",
        "Next: make sure the Square webhook subscription's notification URL is exactly the",
        f"one above, and that it points at {created.webhook_url}.",
    ]
