"""Reading from Square, and what each of its failures means, against the local sandbox over
real HTTP."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest

from handlers import square
from handlers.base import (
    AuthError,
    PermanentError,
    TransientError,
)
from tests.handlers.square.shared import NOW, note

# --- reading -------------------------------------------------------------------------


def test_every_request_carries_the_pinned_version_and_the_token(square_sandbox, square_creds,
                                                                square_customer):
    square.fetch_client(square_creds, square_customer["id"])
    sent = square_sandbox.requests[-1].headers
    assert sent["square-version"] == "2025-08-20" == square.SQUARE_VERSION
    assert sent["authorization"] == f"Bearer {square_sandbox.personal_access_token}"


def test_fetch_client_gives_email_and_first_name_but_no_locale(square_creds, square_customer):
    fetched = square.fetch_client(square_creds, square_customer["id"])
    assert (fetched.id, fetched.email, fetched.first_name) == (
        square_customer["id"],
        "sam@example.com",
        "Sam",
    )
    assert fetched.locale is None


def test_fetch_appointment_derives_completion_from_the_end(square_sandbox, square_creds,
                                                           square_customer):
    start = NOW - timedelta(minutes=90)
    booking = square_sandbox.seed_booking(customer_id=square_customer["id"], start_at=start,
                                          duration_minutes=60)
    done = square.fetch_appointment(square_creds, booking["id"], now=NOW)
    assert (done.status, done.start, done.end) == ("completed", start, start + timedelta(hours=1))
    assert (done.version, done.client.id, done.therapist.id) == (0, square_customer["id"],
                                                                 "TMdanaRapport01")
    running = square.fetch_appointment(square_creds, booking["id"],
                                       now=start + timedelta(minutes=30))
    assert running.status == "booked"


@pytest.mark.parametrize(
    "status, expected",
    [("PENDING", "booked"), ("NO_SHOW", "no_show"), ("CANCELLED_BY_SELLER", "cancelled")],
)
def test_only_accepted_bookings_complete(square_sandbox, square_creds, square_customer, status,
                                         expected):
    booking = square_sandbox.seed_booking(
        customer_id=square_customer["id"], start_at=NOW - timedelta(days=1), status=status
    )
    assert square.fetch_appointment(square_creds, booking["id"], now=NOW).status == expected


def test_an_unknown_booking_is_a_permanent_error(square_creds):
    with pytest.raises(PermanentError, match="NOT_FOUND"):
        square.fetch_appointment(square_creds, "no-such-booking")


# --- errors from Square ----------------------------------------------------------------


def test_401_means_the_clinic_must_reconnect(square_sandbox, square_creds, square_target):
    square_sandbox.fail_next("/v2/customers/", 401)
    with pytest.raises(AuthError):
        square.write_back(square_creds, square_target, note())


def test_a_revoked_token_is_an_auth_error(square_sandbox, square_creds, square_customer):
    square_sandbox.revoke(square_sandbox.personal_access_token)
    with pytest.raises(AuthError, match="ACCESS_TOKEN_REVOKED"):
        square.fetch_client(square_creds, square_customer["id"])


def test_429_is_transient_and_carries_retry_after(square_sandbox, square_creds, square_target):
    square_sandbox.fail_next("/v2/customers/", 429, headers={"Retry-After": "7"})
    with pytest.raises(TransientError) as caught:
        square.write_back(square_creds, square_target, note())
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(square_sandbox, square_creds, square_target, status):
    square_sandbox.fail_next("/v2/customers/", status)
    with pytest.raises(TransientError) as caught:
        square.write_back(square_creds, square_target, note())
    assert caught.value.retry_after is None


def test_a_slow_square_is_a_timeout_not_a_hang(square_sandbox, square_customer):
    square_sandbox.delay_next("/v2/customers/", 2.0)
    with pytest.raises(TransientError, match="Timeout"):
        square.fetch_client(square_sandbox.credentials(timeout=0.3), square_customer["id"])


def test_an_unreachable_square_is_transient(square_customer):
    with pytest.raises(TransientError):
        square.fetch_client({"access_token": "t", "base_url": "http://127.0.0.1:9"},
                            square_customer["id"])


def test_an_answer_cut_off_mid_body_is_transient(square_customer):
    """A proxy or connection cut off mid-answer: tried again, not given up on."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer_garbled():
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n")

    threading.Thread(target=answer_garbled, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.getsockname()[1]}"
    try:
        with pytest.raises(TransientError, match="ChunkedEncodingError"):
            square.fetch_client({"access_token": "t", "base_url": base_url}, square_customer["id"])
    finally:
        server.close()


def test_other_4xx_are_permanent_with_squares_detail(square_sandbox, square_creds, square_customer):
    square_sandbox.fail_next("/v2/customers/", 403, code="INSUFFICIENT_SCOPES")
    with pytest.raises(PermanentError, match="403 INSUFFICIENT_SCOPES"):
        square.fetch_client(square_creds, square_customer["id"])


def test_no_token_is_an_auth_error_before_any_request(square_sandbox, square_customer):
    with pytest.raises(AuthError):
        square.fetch_client({"base_url": square_sandbox.base_url}, square_customer["id"])
    assert square_sandbox.requests == []
