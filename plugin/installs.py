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
    ("Connect Square at:", "connect_url"),
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
        names = ("access_token", "webhook_signature_key", "notification_url")
        given = [name for name in names if options.get(name)]
        if not given:
            config = current_app.config
            if not (config["SQUARE_APPLICATION_ID"] and config["SQUARE_APPLICATION_SECRET"]):
                raise InstallError(
                    "Square's sign-in is not set up on this Rapport, so the clinic's Connect "
                    "Square link would not work: set RAPPORT_SQUARE_APPLICATION_ID and "
                    "RAPPORT_SQUARE_APPLICATION_SECRET (docs/platforms/square.md), or add "
                    "the clinic in manual mode with --access-token, --webhook-signature-key "
                    "and --notification-url")
            return {"mode": "oauth"}  # connected later, at /connect/square/<key>
        missing = [f"--{name.replace('_', '-')}" for name in names if name not in given]
        if missing:
            raise InstallError(
                f"{', '.join(missing)} also required for Square's manual mode; or give none "
                "of the three to connect the clinic with Square's own sign-in (OAuth)")
        return {
            "mode": "manual",
            "access_token": options["access_token"],
            "signature_keys": [options["webhook_signature_key"]],
            "notification_url": _http_url(options["notification_url"], "--notification-url"),
        }
    raise InstallError(f"no install for platform {platform!r}")


def check_with_platform(platform: str, credentials: dict[str, Any]) -> None:
    """What can be checked before a clinic is saved, with the platform itself.

    Square's manual mode: the access token is tried at once, by defining Rapport's
    "Rapport alliance" customer attribute (the install step the OAuth flow does when
    connecting), so a wrong or revoked token is said now, not by a first failed visit.
    """
    if platform != "square" or credentials.get("mode") != "manual":
        return
    from handlers import square
    from handlers.base import AuthError, PermanentError, TransientError
    from plugin.accounts import square_settings

    settings = square_settings()
    try:
        square.ensure_attribute_definition({**credentials, **settings})
    except AuthError as error:
        raise InstallError(
            f"Square refused the access token ({error}). Use the personal access token of "
            "your application (Developer Console → Credentials) for the "
            f"{settings['environment']} environment (RAPPORT_SQUARE_ENVIRONMENT).")
    except TransientError as error:
        raise InstallError(f"Square did not answer ({error}); nothing was saved, try again "
                           "in a few minutes.")
    except PermanentError as error:
        raise InstallError(f"Square refused to set up the clinic ({error}); nothing was saved.")


def clinic_key(platform: str, credentials: dict[str, Any]) -> str | None:
    """The key the clinic must have, when the platform fixed it already (Square's manual
    mode: the key is the last part of the notification URL the seller registered)."""
    if platform == "square" and credentials.get("mode") == "manual":
        from plugin.square_install import SquareInstallError, manual_key

        try:
            return manual_key(credentials["notification_url"])
        except SquareInstallError as error:
            raise InstallError(str(error))
    return None


def describe(created: NewClinic) -> dict[str, Any]:
    """The clinic key, webhook URL and secrets, for the admin to copy."""
    clinic, credentials = created.clinic, created.credentials
    result: dict[str, Any] = {"key": clinic.key, "name": clinic.name,
                              "platform": clinic.platform}
    if not (clinic.platform == "square" and credentials.get("mode") == "oauth"):
        # An OAuth clinic's events come on the application's own subscription, which
        # Rapport creates; its clinic URL would answer 401 to anything sent there.
        result["webhook_url"] = created.webhook_url
    if clinic.platform == "generic":
        result.update(webhook_secret=credentials["inbound_secrets"][0],
                      callback_url=credentials["callback_url"],
                      callback_secret=credentials["outbound_secret"])
    if clinic.platform == "square":
        if credentials.get("mode") == "manual":
            result.update(notification_url=credentials["notification_url"])
        else:
            from plugin.square_install import connect_url

            result.update(connect_url=connect_url(clinic))
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
    if created.credentials.get("mode") == "manual":
        return [
            "",
            "Square will send this clinic's booking events to the notification URL above,",
            "signed with the subscription's key. Send yourself a test with",
            f"`rapport clinic send-test {clinic.key} --to you@example.com`.",
        ]
    return [
        "",
        "Next: open the Connect Square link, signed in as the clinic's Square account",
        "owner, and allow what Rapport asks for. Until then the clinic shows as",
        "'not connected'.",
    ]
