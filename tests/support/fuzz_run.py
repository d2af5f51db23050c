"""The webhook fuzz against a running Rapport (Flask's test client, in process): one
endpoint per platform that takes webhooks, each with a clinic of its own whose platform
is the local stand-in (tests/sandboxes), deliveries from :mod:`tests.support.fuzzing`
sent and checked, and the stored events' jobs run by a real RQ worker in this process.

Checks per case: never an answer of 500 or more, never an exception out of the receiver
(raised through it, or logged at ERROR by it or an adapter); a validly signed delivery
gets 2xx, or 400 naming the field; anything else 401 (413 for a body over the limit).
After each batch: the stored events' jobs run, no job in either queue's failed registry,
no inbox event left failing or unprocessed, as many events stored as answered 202.

Cliniko sends no webhooks (it is polled): its pages are not fuzzed here."""

from __future__ import annotations

import io
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.strategies import SearchStrategy
from sqlalchemy import func, select

import handlers
from handlers import generic
from handlers.acuity import webhooks as acuity
from handlers.mindbody import webhooks as mindbody
from handlers.square import webhooks as square
from plugin.clinics import records
from plugin.clinics.platforms import settings_of
from plugin.store import database
from plugin.store.models import Clinic, InboxEvent
from plugin.tasks import queue
from plugin.web import inbox
from tests.support import clock
from tests.support.fuzzing import (
    SIGNED,
    UNSIGNED,
    Delivery,
    deliveries,
    form_body,
    form_fixtures,
    json_body,
    json_fixtures,
)
from tests.support.generic import add_generic_clinic

SQUARE = handlers.platform("square")
PLATFORMS = ("generic", "square", "square-app", "mindbody", "acuity")
"""The endpoints fuzzed: each platform's, and Square's application-wide one (every
connected merchant's events at one URL, told apart by the merchant id)."""
SQUARE_MERCHANT = "GQQWA3J6A3AEZ"  # the merchant of the recorded Square events


def stand_in_for(endpoint: str) -> str:
    """The platform whose stand-in an endpoint needs."""
    return "square" if endpoint == "square-app" else endpoint
OTHER_KEY = "someone-elses-key"
SQUARE_KEY = "fuzz-square-signature-key"
MINDBODY_KEY = "fuzz-mindbody-signature-key"
BATCH = 200  # cases between two runs of the worker
ALLOWED_SIGNED = {200, 202, 400}


def app_config(sandboxes: dict) -> dict:
    """The settings Rapport needs for the fuzz, over the test or bench configuration: the
    stand-ins' addresses and keys, and no limit on refused requests (the fuzz sends
    thousands of unsigned ones from one address)."""
    config = {"RATE_LIMIT_WEBHOOK_REFUSALS": 10 ** 9}
    if "square" in sandboxes:
        box = sandboxes["square"]
        config.update(SQUARE_ENVIRONMENT="sandbox", SQUARE_BASE_URL=box.base_url,
                      SQUARE_ACCESS_TOKEN=box.personal_access_token,
                      SQUARE_WEBHOOK_SIGNATURE_KEY=SQUARE_KEY)
    if "mindbody" in sandboxes:
        box = sandboxes["mindbody"]
        config.update(MINDBODY_WEBHOOK_SIGNATURE_KEY=MINDBODY_KEY,
                      **{f"MINDBODY_{k.upper()}": v for k, v in box.settings().items()
                         if k != "timeout"})
    if "acuity" in sandboxes:
        config["ACUITY_BASE_URL"] = sandboxes["acuity"].base_url
    return config


@dataclass
class Endpoint:
    name: str
    path: str
    bodies: SearchStrategy
    content_type: str
    sign: Callable[[bytes, str, str], dict]  # body, key, delivery id → signature headers
    key: str
    can_sign: Callable[[bytes], bool] = lambda body: True


def _add_clinic(app: Flask, platform: str, credentials: dict, account: str | None = None,
                key: str | None = None) -> str:
    with app.app_context(), database.session() as db:
        created = records.create(db, name=f"Fuzz {platform}", platform=platform,
                                 timezone="Europe/London", credentials=credentials, key=key,
                                 settings={"timing": {"send_delay_minutes": 0,
                                                      "window_start": "00:00",
                                                      "window_end": "24:00"}})
        created.clinic.account_id = account
        return created.clinic.key


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def endpoints(app: Flask, sandboxes: dict, callback_url: str) -> dict[str, Endpoint]:
    """Each platform's endpoint, with a clinic behind it (``sandboxes``: the platforms'
    stand-ins by name; a platform without one is left out, generic aside)."""
    found = {}
    clinic = add_generic_clinic(app, callback_url=callback_url)
    found["generic"] = Endpoint(
        "generic", f"/webhooks/generic/{clinic['key']}", json_body(json_fixtures("generic")),
        "application/json", key=clinic["webhook_secret"], can_sign=_utf8,
        sign=lambda body, key, msg_id: generic.sign(
            body, secret=key if key != OTHER_KEY else generic.new_secret(), msg_id=msg_id))
    base = app.config["BASE_URL"]
    if "square" in sandboxes:
        url = f"{base}/webhooks/square/fuzz"
        with app.app_context():
            credentials = SQUARE.credentials_from(
                {"access_token": sandboxes["square"].personal_access_token,
                 "webhook_signature_key": SQUARE_KEY, "notification_url": url},
                settings_of(SQUARE))
        key = _add_clinic(app, "square", credentials, account=SQUARE_MERCHANT, key="fuzz")
        found["square"] = Endpoint(
            "square", f"/webhooks/square/{key}", json_body(json_fixtures("square")),
            "application/json", key=SQUARE_KEY,
            sign=lambda body, key, _: square.sign(body, signature_key=key, notification_url=url))
        application_url = f"{base}/webhooks/square"
        found["square-app"] = Endpoint(
            "square-app", "/webhooks/square", json_body(json_fixtures("square")),
            "application/json", key=SQUARE_KEY,
            sign=lambda body, key, _: square.sign(body, signature_key=key,
                                                  notification_url=application_url))
    if "mindbody" in sandboxes:
        site = str(sandboxes["mindbody"].site_id)
        _add_clinic(app, "mindbody", {"site_id": site}, account=site)
        found["mindbody"] = Endpoint(
            "mindbody", "/webhooks/mindbody", json_body(json_fixtures("mindbody")),
            "application/json", key=MINDBODY_KEY,
            sign=lambda body, key, _: mindbody.sign(body, signature_key=key))
    if "acuity" in sandboxes:
        box = sandboxes["acuity"]
        key = _add_clinic(app, "acuity", {"user_id": box.user_id, "api_key": box.api_key,
                                          "previous_api_keys": []}, account=str(box.user_id))
        found["acuity"] = Endpoint(
            "acuity", f"/webhooks/acuity/{key}", form_body(form_fixtures("acuity")),
            acuity.CONTENT_TYPE, key=box.api_key,
            sign=lambda body, key, _: acuity.sign(body, api_key=key))
    return found


class Errors(logging.Handler):
    """Every record at ERROR or above, from Rapport's loggers and its adapters'."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        taken = [f"{r.name}: {r.getMessage()}" + (f" ({r.exc_info[0].__name__}: "
                                                   f"{r.exc_info[1]})" if r.exc_info else "")
                 for r in self.records]
        self.records.clear()
        return taken


@dataclass
class Tally:
    """What one endpoint's fuzz came to."""

    endpoint: str
    cases: int = 0
    signed: int = 0
    statuses: Counter = field(default_factory=Counter)
    over_500: int = 0
    exceptions: list[str] = field(default_factory=list)  # out of the receiver
    unexpected: list[str] = field(default_factory=list)  # an answer the rules forbid
    failures: list[str] = field(default_factory=list)  # the worker's, from stored events
    seconds: float = 0.0
    accepted: int = 0

    @property
    def clean(self) -> bool:
        return not (self.over_500 or self.exceptions or self.unexpected or self.failures)


def _headers(endpoint: Endpoint, delivery: Delivery) -> tuple[list, bool]:
    """The request's headers, and whether it carries a valid signature."""
    headers = list(delivery.headers)
    valid = delivery.signing == SIGNED and endpoint.can_sign(delivery.body)
    if delivery.signing != UNSIGNED and endpoint.can_sign(delivery.body):
        signed = endpoint.sign(delivery.body, endpoint.key if valid else OTHER_KEY,
                               delivery.delivery_id)
        headers += [(k, v) for k, v in signed.items() if k.lower() != "content-type"]
    content_type = delivery.content_type or endpoint.content_type
    if delivery.content_type != "":
        headers.append(("Content-Type", content_type))
    return headers, valid


def send(client, endpoint: Endpoint, delivery: Delivery, tally: Tally, errors: Errors,
         limit: int) -> None:
    headers, valid = _headers(endpoint, delivery)
    tally.cases += 1
    tally.signed += valid
    try:
        # The raw bytes as the stream, as a server gives them: given as ``data``, an empty
        # body with a form content type would be replaced by an encoded empty form.
        answer = client.post(endpoint.path, input_stream=io.BytesIO(delivery.body),
                             headers=[*headers, ("Content-Length", str(len(delivery.body)))])
        status = answer.status_code
        payload = answer.get_json(silent=True) or {}
    except Exception as error:  # noqa: BLE001 - counted: what the fuzz is looking for
        tally.exceptions.append(f"raised {error.__class__.__name__}: {error}")
        status, payload = 599, {}
    tally.statuses[status] += 1
    tally.over_500 += status >= 500
    tally.accepted += status == 202
    tally.exceptions += errors.take()
    allowed = {413} if len(delivery.body) > limit else ALLOWED_SIGNED if valid else {401}
    named = status != 400 or (payload.get("error") and payload.get("field"))
    if status not in allowed or not named:
        tally.unexpected.append(f"{status} {payload} for a {'signed' if valid else 'unsigned'}"
                                f" body {delivery.body[:120]!r}")


def run_jobs(app: Flask, errors: Errors, tally: Tally, clinic_ids: list[int],
             after: int) -> None:
    """Run the stored events' jobs; note any failed job and any event stored after the
    inbox id ``after`` left failing."""
    inbox.inbox(app).flush()
    clock.drain(app, within=5)
    with app.app_context():
        for each in queue.queues():
            registry = each.failed_job_registry
            for job_id in registry.get_job_ids():
                job = each.fetch_job(job_id)
                tally.failures.append(f"failed job {job_id}: "
                                      f"{(job.latest_result().exc_string if job else '')[-300:]}")
                registry.remove(job_id, delete_job=True)
        with database.session() as db:
            rows = db.scalars(select(InboxEvent).where(
                InboxEvent.clinic_id.in_(clinic_ids), InboxEvent.id > after,
                (InboxEvent.last_error.is_not(None)) | (InboxEvent.processed_at.is_(None))))
            tally.failures += [f"inbox {row.id}: {row.last_error or 'not processed'}"
                               for row in rows]
    tally.failures += [f"logged: {message}" for message in errors.take()]


def stored(app: Flask, clinic_ids: list[int]) -> tuple[int, int]:
    """How many events the clinics have in the inbox, and the last one's id."""
    with app.app_context(), database.session() as db:
        count, last = db.execute(select(func.count(InboxEvent.id), func.max(InboxEvent.id))
                                 .where(InboxEvent.clinic_id.in_(clinic_ids))).one()
        return count, last or 0


def fuzz(app: Flask, endpoint: Endpoint, cases: int, *, seed: int | None = None,
         derandomize: bool = False) -> Tally:
    """``cases`` deliveries to ``endpoint``, checked; the stored events' jobs run every
    :data:`BATCH` cases and at the end."""
    tally = Tally(endpoint.name)
    client = app.test_client()
    errors = Errors()
    loggers = [logging.getLogger(name) for name in ("plugin", "handlers", "rq", "flask.app")]
    with app.app_context(), database.session() as db:
        clinic_ids = list(db.scalars(select(Clinic.id)))
    before, after = stored(app, clinic_ids)
    limit = app.config["MAX_CONTENT_LENGTH"]

    @settings(max_examples=cases, deadline=None, database=None, derandomize=derandomize,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(deliveries(endpoint.bodies))
    def case(delivery: Delivery) -> None:
        send(client, endpoint, delivery, tally, errors, limit)
        if tally.cases % BATCH == 0:
            run_jobs(app, errors, tally, clinic_ids, after)

    if seed is not None and not derandomize:
        case = hypothesis_seed(seed)(case)
    for logger in loggers:
        logger.addHandler(errors)
    started = time.perf_counter()
    try:
        case()
        run_jobs(app, errors, tally, clinic_ids, after)
    finally:
        for logger in loggers:
            logger.removeHandler(errors)
    tally.seconds = time.perf_counter() - started
    kept = stored(app, clinic_ids)[0] - before
    if kept != tally.accepted:
        tally.unexpected.append(f"{kept} events stored for {tally.accepted} answers of 202")
    return tally
