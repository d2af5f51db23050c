"""Rapport's tables (SQLAlchemy 2). Times are aware UTC datetimes everywhere."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Stored as naive UTC (SQLite has no time zones), always read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Clinic(Base):
    __tablename__ = "clinics"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(32))
    # The clinic's account on its platform (Square's merchant id), for routing events
    # that arrive on an application-wide webhook.
    account_id: Mapped[str | None] = mapped_column(String(255), index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    language: Mapped[str] = mapped_column(String(16), default="en")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The platform credentials and webhook secrets, sealed with plugin.store.sealing.
    credentials: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), default="active")
    status_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboxEvent(Base):
    """A verified webhook delivery, stored before anything else happens to it."""

    __tablename__ = "inbox_events"
    __table_args__ = (UniqueConstraint("clinic_id", "delivery_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"))
    delivery_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What the platform's adapter read in the body, as it parsed it at the door
    # (handlers.base.event_to_dict): the jobs act on this, never parsing the body again.
    events: Mapped[list[Any] | None] = mapped_column(JSON)
    processed_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

    clinic: Mapped[Clinic] = relationship()


class PollState(Base):
    """Where polling a clinic's platform stands, for platforms that send no webhooks
    (``Completion.POLLING``): one row per clinic, made when it is first due."""

    __tablename__ = "poll_states"

    clinic_id: Mapped[int] = mapped_column(
        ForeignKey("clinics.id", ondelete="CASCADE"), primary_key=True)
    # Visits that ended before this never get a check-in: the clinic's connection, less
    # the installation's horizon (RAPPORT_POLL_HORIZON_HOURS).
    since: Mapped[datetime]
    # The platform's own cursor, opaque: saved in the transaction that stores the
    # deliveries read up to it, so a poll cut short starts again from the last one.
    cursor: Mapped[str | None] = mapped_column(Text)
    next_poll_at: Mapped[datetime | None] = mapped_column(index=True)
    last_polled_at: Mapped[datetime | None]  # the last poll the platform answered
    # A poll under way since then; one at a time per clinic (a stale claim is a poll
    # that was killed, and is taken over).
    claimed_at: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Why the last poll failed (cleared by the next that succeeds), for clinic list.
    last_problem: Mapped[str | None] = mapped_column(Text)
    last_problem_at: Mapped[datetime | None]

    clinic: Mapped[Clinic] = relationship()


class ApiCalls(Base):
    """How many requests Rapport made to a clinic's platform in one calendar month (UTC):
    some platforms bill calls beyond a monthly allowance."""

    __tablename__ = "api_calls"

    clinic_id: Mapped[int] = mapped_column(
        ForeignKey("clinics.id", ondelete="CASCADE"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # "2026-12"
    calls: Mapped[int] = mapped_column(Integer, default=0)


class Appointment(Base):
    """A visit as its platform last described it.

    ``status`` is booked, completed, cancelled or no_show, as the platform says, or
    ``unconfirmed``: Rapport asked the platform after the end and it could not say (the
    booking is gone, or out of Rapport's reach), so no check-in follows and nothing
    asks again; a later event about the booking replaces it.
    """

    __tablename__ = "appointments"
    __table_args__ = (UniqueConstraint("clinic_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[datetime | None]
    end_at: Mapped[datetime | None]
    therapist_id: Mapped[str | None] = mapped_column(String(255))
    therapist_name: Mapped[str | None] = mapped_column(String(200))
    client_external_id: Mapped[str] = mapped_column(String(255), index=True)
    location_id: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[int | None] = mapped_column(Integer)
    # The response whose talking points this booking's own note carries (Square).
    noted_response_id: Mapped[int | None] = mapped_column(Integer)
    event_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # Platforms without a "completed" status (Square): when the platform is next asked
    # whether the visit happened (its end plus the grace, then later and later while
    # the platform cannot say yet), how often it was asked, and what it last said.
    next_check_at: Mapped[datetime | None]
    check_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    check_detail: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    clinic: Mapped[Clinic] = relationship()


class CheckIn(Base):
    """The one check-in for one visit: at most one per appointment, ever."""

    __tablename__ = "check_ins"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"))
    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), unique=True
    )
    client_external_id: Mapped[str] = mapped_column(String(255), index=True)
    therapist_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    # An admin's test (rapport clinic send-test): answered like any other, never written back.
    test: Mapped[bool] = mapped_column(default=False, server_default=false())
    instrument_id: Mapped[str | None] = mapped_column(String(100))
    send_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]  # when a worker took it to send
    sent_at: Mapped[datetime | None]
    remind_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    # The keyed hash of the address it went to (plugin.pipeline.addresses), kept after
    # the address itself is dropped: for unsubscribing and the cap per address.
    address_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    # How far sending got (plugin.pipeline.mail.Stage): whether the mail server could
    # have the message, should the worker die before it is marked sent.
    smtp_stage: Mapped[str | None] = mapped_column(String(16))
    send_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Contact details kept only until the check-in is answered, closes or is cancelled.
    email: Mapped[str | None] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str | None] = mapped_column(String(35))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    clinic: Mapped[Clinic] = relationship()
    appointment: Mapped[Appointment] = relationship()


class SurveyLink(Base):
    """A link sent to a client; only the SHA-256 of its random token is kept."""

    __tablename__ = "survey_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    check_in_id: Mapped[int] = mapped_column(ForeignKey("check_ins.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    check_in: Mapped[CheckIn] = relationship()


class Response(Base):
    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    check_in_id: Mapped[int] = mapped_column(
        ForeignKey("check_ins.id", ondelete="CASCADE"), unique=True
    )
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"))
    client_external_id: Mapped[str] = mapped_column(String(255), index=True)
    therapist_id: Mapped[str | None] = mapped_column(String(255))
    instrument_id: Mapped[str] = mapped_column(String(100))
    instrument_version: Mapped[str] = mapped_column(String(32))
    answers: Mapped[dict[str, Any]]
    comment: Mapped[str | None] = mapped_column(Text)
    overall: Mapped[float | None] = mapped_column(Float)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)

    check_in: Mapped[CheckIn] = relationship()
    clinic: Mapped[Clinic] = relationship()


class WriteBack(Base):
    """Delivering one response's scores and note to the clinic's platform."""

    __tablename__ = "write_backs"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), unique=True
    )
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    response: Mapped[Response] = relationship()


class WriteBackAttempt(Base):
    __tablename__ = "write_back_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    write_back_id: Mapped[int] = mapped_column(
        ForeignKey("write_backs.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class PlatformWebhook(Base):
    """A webhook subscription owned by Rapport's application on a platform (Square ties
    them to the application, not to a clinic), with its sealed signature key. One per
    environment: Square's sandbox and production subscriptions are separate."""

    __tablename__ = "platform_webhooks"
    __table_args__ = (UniqueConstraint("platform", "environment", "notification_url",
                                       name="uq_platform_webhooks_environment_url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    environment: Mapped[str] = mapped_column(String(16), server_default="production")
    notification_url: Mapped[str] = mapped_column(Text)
    subscription_id: Mapped[str | None] = mapped_column(String(255))
    credentials: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OptOut(Base):
    __tablename__ = "opt_outs"
    __table_args__ = (UniqueConstraint("clinic_id", "client_external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"))
    client_external_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OptOutAddress(Base):
    """An address whose owner opted out of a clinic's check-ins, by its keyed hash only."""

    __tablename__ = "opt_out_addresses"
    __table_args__ = (UniqueConstraint("clinic_id", "address_hash",
                                       name="uq_opt_out_addresses_clinic_address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"))
    address_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Installation(Base):
    """This database's own name: one row, made with the schema.

    It prefixes every job id in Redis and every delivery id sent to a clinic's
    callback, so two databases that share a Redis or a receiver (an instance set up
    afresh, a staging copy beside production) never take each other's jobs or
    deliveries for their own.
    """

    __tablename__ = "installation"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Admin(Base):
    """Someone who signs in to the console: the admin of one clinic, or an operator, who
    sees every clinic (``clinic_id`` empty). There are no passwords: signing in is by a
    link emailed to ``email``. Removing the row ends its sessions and links."""

    __tablename__ = "admins"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    clinic_id: Mapped[int | None] = mapped_column(
        ForeignKey("clinics.id", ondelete="CASCADE"), index=True)
    operator: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]

    clinic: Mapped[Clinic | None] = relationship()


class SignInLink(Base):
    """A single-use sign-in link emailed to an admin; only its token's SHA-256 is kept."""

    __tablename__ = "admin_sign_in_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"),
                                          index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    admin: Mapped[Admin] = relationship()


class AdminSession(Base):
    """A signed-in browser: its cookie's token hashed, so a session can be ended from the
    server (sign-out, idle, the admin removed)."""

    __tablename__ = "admin_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"),
                                          index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]

    admin: Mapped[Admin] = relationship()


class AdminAlert(Base):
    """An alert emailed to a clinic's admins (``kind``: needs_reconnecting,
    write_backs_failing), at most one a day per clinic and kind."""

    __tablename__ = "admin_alerts"
    __table_args__ = (UniqueConstraint("clinic_id", "kind", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    day: Mapped[str] = mapped_column(String(10))  # UTC date, YYYY-MM-DD
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[str | None] = mapped_column(Text)
