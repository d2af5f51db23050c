"""Rapport's configuration: defaults, then the instance folder, then ``RAPPORT_*``.

Every setting can be given as an environment variable with the ``RAPPORT_`` prefix
(``RAPPORT_DATABASE_URL``, ``RAPPORT_SMTP_PORT``, …) or in ``<instance>/rapport.cfg``
(Python syntax, without the prefix).

Each booking platform declares the settings it needs (``handlers.base.Setting``); they
are ``RAPPORT_<PLATFORM>_<NAME>`` (``RAPPORT_SQUARE_ENVIRONMENT``), text taken as given,
checked here against what the platform declares (its choices; keys given as one key or
a JSON list of keys while rotating).

Settings that are text (:data:`TEXT_SETTINGS`: keys, passwords, URLs, addresses, names)
are taken from the environment exactly as given, so ``RAPPORT_SECRET_KEY=12345678…`` or
``RAPPORT_SMTP_PASSWORD=true`` stay those strings. Every other value is parsed as JSON
when it is valid JSON, so ``RAPPORT_SMTP_PORT=2525`` is a number,
``RAPPORT_SMTP_STARTTLS=false`` a boolean and ``RAPPORT_JOB_RETRY_INTERVALS=[10, 60]`` a
list.

``SESSION_COOKIE_SECURE`` follows ``BASE_URL`` (Secure when it is https) unless it is
set in ``rapport.cfg`` or as ``RAPPORT_SESSION_COOKIE_SECURE``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlparse

from flask import Flask

import handlers

CORE_DEFAULTS: dict[str, object] = {
    # "production" refuses to start without a secret key and a base URL;
    # "development" generates a secret key in the instance folder. Exactly one of the
    # two (in any case): anything else refuses to start, rather than guessing.
    "ENV": "production",
    "SECRET_KEY": None,
    "BASE_URL": None,
    "DATABASE_URL": None,  # default: sqlite:///<instance>/rapport.db
    "REDIS_URL": None,  # default: an embedded Redis server in the instance folder
    "QUEUE_NAME": "rapport",
    "SMTP_HOST": "localhost",
    "SMTP_PORT": 25,
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,
    "SMTP_STARTTLS": False,
    "SMTP_TIMEOUT": 20,
    "MAIL_FROM": "Rapport <no-reply@localhost>",
    "QUESTIONNAIRES_DIR": None,  # a clinic's licensed instrument files
    "AUTO_MIGRATE": True,
    # Outbound HTTP (callbacks, platform APIs).
    "HTTP_TIMEOUT": 10,
    # Seconds between a failed job's retries (a temporary SMTP or platform failure).
    "JOB_RETRY_INTERVALS": [10, 60, 300, 900, 3600],
    "WRITE_BACK_MAX_ATTEMPTS": 8,
    "WRITE_BACK_BACKOFF_SECONDS": 30,  # first retry after 15–30 s, doubling up to an hour
    # Recovery and retention.
    "SWEEP_AFTER_SECONDS": 300,  # inbox events not processed by then are re-enqueued
    "SWEEP_INTERVAL_SECONDS": 60,
    "INBOX_RETENTION_DAYS": 7,  # processed events kept this long, for deduplication
    "LINK_RETENTION_DAYS": 60,  # survey links kept for unsubscribing
    # Platforms without webhooks (Completion.POLLING): how often each clinic is asked what
    # changed (at least 60 seconds), and how many hours before a clinic was connected its
    # first poll looks back (0: only visits ending after it was connected get a check-in;
    # at most 48, as a visit that ended longer ago gets none anyway).
    "POLL_INTERVAL_SECONDS": 300,
    "POLL_HORIZON_HOURS": 0,
    # Webhook bodies larger than this are refused with 413.
    "MAX_CONTENT_LENGTH": 256 * 1024,
    "WTF_CSRF_TIME_LIMIT": None,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SECURE": None,  # None: Secure when BASE_URL is https
    # Callback URLs (docs/security.md). Loopback, private, link-local, multicast and
    # reserved addresses are refused, at configuration and again at each delivery; true
    # allows them (a receiver on this machine or network): the default in development,
    # refused in production, where callbacks must also be https.
    "ALLOW_PRIVATE_CALLBACKS": None,
    # One address gets at most this many unanswered check-ins per period from one clinic,
    # whatever client profiles it appears under (0: no cap).
    "ADDRESS_CHECK_IN_LIMIT": 4,
    "ADDRESS_CHECK_IN_PERIOD_DAYS": 30,
    # A stored event whose processing failed this many times is given up (its body is
    # dropped; the error is kept and shown by `rapport clinic list`).
    "INBOX_MAX_ATTEMPTS": 10,
    # A check-in whose sending was cut short before the mail server had the message is
    # sent again, at most this many times in all.
    "SEND_MAX_ATTEMPTS": 5,
    # Requests per minute from one client address to the pages anyone can open (/s/…,
    # /connect/…, /healthz), per web process (0: no limit).
    "RATE_LIMIT_PAGES": 120,
    # Refused webhook requests (bad signature, unknown clinic) per minute from one
    # address, per web process; past it that address gets 429 until the minute is over
    # (0: no limit). Accepted deliveries never count.
    "RATE_LIMIT_WEBHOOK_REFUSALS": 60,
    # /healthz answers {"ok": …} to anyone; with ?token=<this> (or the header
    # X-Health-Token) it also gives the detail (database, Redis, queue, skipped files).
    "HEALTH_TOKEN": None,
    # How many reverse proxies in front of Rapport set X-Forwarded-For/-Proto/-Host
    # (0: none; their headers are then ignored).
    "PROXY_COUNT": 0,
    # The admin console: how long a sign-in link asked for on the sign-in page and the
    # link in an invitation stay good, and how long a session lasts without a request and
    # at most.
    "ADMIN_LINK_MINUTES": 15,
    "ADMIN_INVITE_HOURS": 72,
    "ADMIN_IDLE_MINUTES": 60,
    "ADMIN_SESSION_HOURS": 12,
    # Operations (docs/operations.md).
    "METRICS_TOKEN": None,  # GET /metrics answers only with this bearer token; off when unset
    "LOG_FORMAT": "text",  # or "json": one JSON object per line
    "SENTRY_DSN": None,  # errors to Sentry, personal data removed (pip install 'rapport[sentry]')
    "SENTRY_ENVIRONMENT": None,
    "SENTRY_TRACES_SAMPLE_RATE": 0.0,
}

PLATFORM_SETTINGS = {
    f"{platform.name.upper()}_{setting.name}": (platform, setting)
    for platform in handlers.platforms() for setting in platform.settings
}
DEFAULTS: dict[str, object] = {
    **CORE_DEFAULTS,
    **{name: setting.default for name, (_, setting) in PLATFORM_SETTINGS.items()},
}

# Read from the environment as given, never as JSON: an all-digit secret key or a
# password that reads "true" must not turn into a number or a boolean. A platform's key
# list is read as JSON (a list) where it is one.
TEXT_SETTINGS = frozenset({
    "ENV", "SECRET_KEY", "BASE_URL", "DATABASE_URL", "REDIS_URL", "QUEUE_NAME",
    "SMTP_HOST", "SMTP_USERNAME", "SMTP_PASSWORD", "MAIL_FROM", "QUESTIONNAIRES_DIR",
    "SESSION_COOKIE_SAMESITE", "HEALTH_TOKEN", "METRICS_TOKEN", "LOG_FORMAT", "SENTRY_DSN",
    "SENTRY_ENVIRONMENT",
    *(name for name, (_, setting) in PLATFORM_SETTINGS.items() if not setting.keys),
})
ENV_PREFIX = "RAPPORT"
# A visit that ended longer ago than this gets no check-in (pipeline.appointments'
# CHECK_HORIZON), so a first poll never needs to look back further.
MAX_POLL_HORIZON_HOURS = 48
# On or off: "true"/"false" in any case, also yes/no, on/off, 1/0.
BOOLEAN_SETTINGS = ("SMTP_STARTTLS", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
                    "AUTO_MIGRATE", "ALLOW_PRIVATE_CALLBACKS")
# Whole numbers, zero or more.
COUNT_SETTINGS = ("ADDRESS_CHECK_IN_LIMIT", "ADDRESS_CHECK_IN_PERIOD_DAYS", "INBOX_MAX_ATTEMPTS",
                  "SEND_MAX_ATTEMPTS", "RATE_LIMIT_PAGES", "RATE_LIMIT_WEBHOOK_REFUSALS",
                  "PROXY_COUNT", "ADMIN_LINK_MINUTES", "ADMIN_INVITE_HOURS",
                  "ADMIN_IDLE_MINUTES", "ADMIN_SESSION_HOURS")
ENVIRONMENTS = ("production", "development")
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0", ""})


class ConfigurationError(RuntimeError):
    """Rapport cannot start with this configuration; the message says what to set."""


def instance_path(overrides: dict | None = None) -> str | None:
    """The instance folder: ``INSTANCE_PATH`` in ``overrides``, else
    ``RAPPORT_INSTANCE_PATH``, else None (Flask's default beside the package)."""
    path = (overrides or {}).get("INSTANCE_PATH") or os.environ.get("RAPPORT_INSTANCE_PATH")
    return os.path.abspath(path) if path else None


def bare_app(overrides: dict | None = None) -> Flask:
    """A Flask object for ``plugin`` with Rapport's instance folder, nothing set up."""
    return Flask("plugin", instance_path=instance_path(overrides), instance_relative_config=True)


def _read(app: Flask, overrides: dict | None) -> None:
    app.config.update(DEFAULTS)
    app.config.from_pyfile("rapport.cfg", silent=True)
    app.config.from_prefixed_env(prefix=ENV_PREFIX)
    for name in TEXT_SETTINGS:
        value = os.environ.get(f"{ENV_PREFIX}_{name}")
        if value is not None:
            app.config[name] = value
    if overrides:
        app.config.update(overrides)


def read_settings() -> dict:
    """The settings as the server would read them (defaults, ``<instance>/rapport.cfg``,
    ``RAPPORT_*``), without checking them or starting anything: for commands, such as
    ``rapport questionnaires``, that need one setting and no database or queue."""
    app = bare_app()
    _read(app, None)
    return dict(app.config)


def load_config(app: Flask, overrides: dict | None = None) -> None:
    _read(app, overrides)

    instance = Path(app.instance_path)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'rapport.db'}"
    app.config["ENV"] = _environment(app.config["ENV"])
    if app.config["ENV"] == "production":
        _require_production_settings(app)
    else:
        if not app.config["SECRET_KEY"]:
            app.config["SECRET_KEY"] = _development_secret_key(instance)
        if not app.config["BASE_URL"]:
            app.config["BASE_URL"] = "http://127.0.0.1:5000"
    app.config["BASE_URL"] = str(app.config["BASE_URL"]).rstrip("/")
    base = urlparse(app.config["BASE_URL"])
    if base.scheme not in ("http", "https") or not base.netloc or base.query or base.fragment:
        raise ConfigurationError(
            f"RAPPORT_BASE_URL is {app.config['BASE_URL']!r}: give the address clients and "
            "platforms reach Rapport at, with its scheme, e.g. https://rapport.example.com "
            "(email links and webhook URLs are built on it).")
    if app.config["SESSION_COOKIE_SECURE"] is None:
        app.config["SESSION_COOKIE_SECURE"] = app.config["BASE_URL"].startswith("https:")
    try:
        app.config["SMTP_PORT"] = int(app.config["SMTP_PORT"])
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"RAPPORT_SMTP_PORT is {app.config['SMTP_PORT']!r}: give the mail server's port "
            "as a number, e.g. 587.") from None
    for name in BOOLEAN_SETTINGS:
        app.config[name] = _boolean(name, app.config[name])
    for name in COUNT_SETTINGS:
        app.config[name] = _count(name, app.config[name])
    _check_callback_policy(app)
    app.config["POLL_INTERVAL_SECONDS"] = _number(
        "POLL_INTERVAL_SECONDS", app.config["POLL_INTERVAL_SECONDS"], 60, None,
        "seconds between two polls of a clinic, at least 60 (default 300)")
    app.config["POLL_HORIZON_HOURS"] = _number(
        "POLL_HORIZON_HOURS", app.config["POLL_HORIZON_HOURS"], 0, MAX_POLL_HORIZON_HOURS,
        "hours before a clinic was connected that its first poll looks back, from 0 to "
        f"{MAX_POLL_HORIZON_HOURS}: a visit that ended longer ago gets no check-in anyway")
    _check_platform_settings(app)


def _environment(value: object) -> str:
    """``production`` or ``development``, in any case; anything else (``prod``, a typo)
    refuses to start: guessing would start a production server in development mode,
    with a generated key, no Secure cookie and no HSTS."""
    word = str(value or "").strip().lower()
    if word not in ENVIRONMENTS:
        raise ConfigurationError(
            f"RAPPORT_ENV is {value!r}: use production (the default) or development.")
    return word


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        value = repr(value)
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise ConfigurationError(f"RAPPORT_{name} is {value!r}: give a whole number, 0 or more.")
    return number


def _check_callback_policy(app: Flask) -> None:
    production = app.config["ENV"] == "production"
    if app.config["ALLOW_PRIVATE_CALLBACKS"] is None:
        app.config["ALLOW_PRIVATE_CALLBACKS"] = not production
    elif app.config["ALLOW_PRIVATE_CALLBACKS"] and production:
        raise ConfigurationError(
            "RAPPORT_ALLOW_PRIVATE_CALLBACKS is on in production: callbacks to this machine "
            "or its private network would let anyone who can set a clinic's callback URL "
            "reach them. Remove the setting (it is for development and tests only).")


def _boolean(name: str, value: object) -> object:
    """``value`` as True or False: a word such as "False" is not left as a string,
    which any check would read as on. None stays None (a default decided later)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigurationError(
        f"RAPPORT_{name} is {value!r}: use true or false.")


def _number(name: str, value: object, lowest: int, highest: int | None, meaning: str) -> int:
    """``value`` as a whole number within its range, or a plain error saying what it is."""
    try:
        number = int(value) if not isinstance(value, bool) else None
        if number is None or number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        number = None
    if number is None or number < lowest or (highest is not None and number > highest):
        raise ConfigurationError(f"RAPPORT_{name} is {value!r}: give the {meaning}.")
    return number


def _check_platform_settings(app: Flask) -> None:
    """Refuse at startup what would otherwise fail on a clinic admin's connect link or on
    every webhook of a platform: a value outside its choices, keys that are not text."""
    for name, (platform, setting) in PLATFORM_SETTINGS.items():
        value = app.config.get(name)
        if setting.choices and value not in setting.choices:
            allowed = " or ".join(repr(choice) for choice in setting.choices)
            raise ConfigurationError(
                f"RAPPORT_{name} is {value!r}: use {allowed} ({setting.help}).")
        if setting.keys:
            app.config[name] = _keys(name, value, platform.title)


def _keys(name: str, value: object, title: str) -> list[str]:
    """A setting holding one key, or a list of keys while rotating, as a list."""
    if value in (None, ""):
        keys = []
    elif isinstance(value, str):
        keys = [value]
    elif isinstance(value, tuple):  # rapport.cfg is Python
        keys = list(value)
    else:
        keys = value
    if not (isinstance(keys, list) and all(isinstance(key, str) and key for key in keys)):
        raise ConfigurationError(
            f"RAPPORT_{name} must be {title}'s signature key, or a JSON list of keys while "
            'rotating (["old-key", "new-key"]); a key that reads as a number or as JSON is '
            f"given as a JSON string, e.g. RAPPORT_{name}='\"12345\"'.")
    return keys


def _require_production_settings(app: Flask) -> None:
    missing = [name for name in ("SECRET_KEY", "BASE_URL") if not app.config.get(name)]
    if missing:
        names = ", ".join(f"RAPPORT_{name}" for name in missing)
        raise ConfigurationError(
            f"{names} not set. Rapport refuses to start in production without "
            f"{'it' if len(missing) == 1 else 'them'}: set the environment variable "
            "(a secret key is a long random string, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), "
            "or set RAPPORT_ENV=development to try Rapport locally."
        )
    if len(str(app.config["SECRET_KEY"])) < 16:
        raise ConfigurationError(
            "RAPPORT_SECRET_KEY is too short: use at least 16 random characters."
        )


def _development_secret_key(instance: Path) -> str:
    """A random key kept in the instance folder, so restarts keep sessions and secrets."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        # Written aside and linked into place, so concurrent first starts agree on one key.
        draft = instance / f"secret_key.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
