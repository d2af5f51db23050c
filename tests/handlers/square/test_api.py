"""Reading from and writing to Square, against the local sandbox over real HTTP."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests

from handlers import square
from handlers.base import (
    AuthError,
    ConflictError,
    Note,
    PermanentError,
    TransientError,
    WriteBackTarget,
)

START, END = "[Rapport]", "[/Rapport]"
NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


def note(body: str = "Alliance 82/100 ▂▅▇\n- Ask how the shoulder felt", **summary) -> Note:
    """A hand-made note: its text only, no renderer behind it (see ``real_note``)."""
    return Note(
        text=f"{START}\n{body}\n{END}",
        block_start=START,
        block_end=END,
        summary=summary,
        talking_points=("Ask how the shoulder felt", "Check pressure preference"),
    )


@pytest.fixture
def square_customer(square_sandbox):
    return square_sandbox.seed_customer(given_name="Sam", email_address="sam@example.com")


@pytest.fixture
def square_target(square_customer):
    return WriteBackTarget(client_id=square_customer["id"], appointment_id="visit-1")


@pytest.fixture
def square_attribute_definition(square_creds):
    square.ensure_attribute_definition(square_creds)


def customer_path(square_customer) -> str:
    return f"/v2/customers/{square_customer['id']}"


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


# --- the customer note ---------------------------------------------------------------


def test_the_block_is_replaced_and_the_therapists_text_kept(square_sandbox, square_creds,
                                                            square_target,
                                                            square_attribute_definition):
    before = "Prefers firm pressure.\n\n"
    after = "\n\nAllergic to arnica."
    square_sandbox.update_customer(square_target.client_id,
                                   note=f"{before}{START}\nold\n{END}{after}")
    result = square.write_back(square_creds, square_target, note())
    assert square_sandbox.customer(square_target.client_id)["note"] == before + note().text + after
    assert result.target == "square.customer"
    assert result.detail["note_updated"] is True


def test_a_block_in_a_note_with_windows_line_endings_is_replaced_not_repeated(
    square_sandbox, square_creds, square_target, square_attribute_definition
):
    # A note saved from a Windows or web form comes back with CRLF line endings.
    before = "Prefers firm pressure.\r\n\r\n"
    after = "\r\nAllergic to arnica."
    square_sandbox.update_customer(square_target.client_id,
                                   note=f"{before}{START}\r\nold\r\n{END}{after}")
    square.write_back(square_creds, square_target, note())
    assert square_sandbox.customer(square_target.client_id)["note"] == before + note().text + after


def test_a_first_note_goes_after_the_therapists_text(square_sandbox, square_creds, square_target,
                                                     square_attribute_definition):
    square_sandbox.update_customer(square_target.client_id, note="Prefers firm pressure.")
    square.write_back(square_creds, square_target, note())
    assert square_sandbox.customer(square_target.client_id)["note"] == (
        "Prefers firm pressure.\n\n" + note().text)


def test_a_marker_inside_the_therapists_sentence_is_not_the_block(
    square_sandbox, square_creds, square_target, square_attribute_definition
):
    mine = f"Asked about the {START} emails, wants fewer.\nKnee surgery 2024.\n"
    square_sandbox.update_customer(square_target.client_id, note=f"{mine}\n{START}\nold\n{END}")
    square.write_back(square_creds, square_target, note())
    assert square_sandbox.customer(square_target.client_id)["note"] == f"{mine}\n{note().text}"


def test_the_therapists_own_line_breaks_are_kept_before_a_first_note(
    square_sandbox, square_creds, square_target, square_attribute_definition
):
    square_sandbox.update_customer(square_target.client_id, note="Prefers firm pressure.\n")
    square.write_back(square_creds, square_target, note())
    assert square_sandbox.customer(square_target.client_id)["note"] == (
        "Prefers firm pressure.\n\n" + note().text)


def test_the_same_write_twice_changes_nothing(square_sandbox, square_creds, square_customer,
                                              square_target, square_attribute_definition):
    square.write_back(square_creds, square_target, note())
    version = square_sandbox.customer(square_customer["id"])["version"]
    second = square.write_back(square_creds, square_target, note())
    assert square_sandbox.customer(square_customer["id"])["version"] == version
    assert len(square_sandbox.requests_to("PUT", customer_path(square_customer))) == 1
    assert second.detail["note_updated"] is False
    assert square_sandbox.custom_attribute(square_customer["id"],
                                           square.ATTRIBUTE_KEY)["version"] == 1


def test_a_concurrent_edit_is_reread_and_kept(square_sandbox, square_creds, square_customer,
                                              square_target, square_attribute_definition):
    square_sandbox.update_customer(square_customer["id"], note="Prefers firm pressure.")

    def therapist_saves():
        current = square_sandbox.customer(square_customer["id"])["note"]
        square_sandbox.update_customer(square_customer["id"],
                                       note=current + "\nAsked for a quieter room.")

    square_sandbox.before_next("PUT", customer_path(square_customer), therapist_saves)
    square.write_back(square_creds, square_target, note())
    puts = square_sandbox.requests_to("PUT", customer_path(square_customer))
    assert [request.status for request in puts] == [409, 200]
    assert square_sandbox.customer(square_customer["id"])["note"] == (
        "Prefers firm pressure.\nAsked for a quieter room.\n\n" + note().text
    )


def test_a_record_that_keeps_changing_is_a_conflict(square_sandbox, square_creds, square_customer,
                                                    square_target, square_attribute_definition):
    square_sandbox.fail_next(customer_path(square_customer), 400, times=9, code="VERSION_MISMATCH",
                             method="PUT")
    with pytest.raises(ConflictError):
        square.write_back(square_creds, square_target, note())
    puts = square_sandbox.requests_to("PUT", customer_path(square_customer))
    assert len(puts) == square.CONFLICT_ATTEMPTS


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


# --- the custom attribute --------------------------------------------------------------


def test_the_summary_attribute_is_upserted(
    square_sandbox, square_creds, square_customer, square_target, square_attribute_definition,
    square_note, checkin_instrument
):
    """The line shows the score and trend of the summary every write-back carries
    (``wire_summary`` of a real assessment), not only the number of talking points."""
    result = square.write_back(square_creds, square_target, square_note())
    stored = square_sandbox.custom_attribute(square_customer["id"], "rapport-alliance")
    assert stored["value"] == "Alliance 71.9/100 ▆█▄▁ — 3 talking points"
    assert stored["visibility"] == "VISIBILITY_READ_ONLY"
    assert result.detail["attribute_value"] == stored["value"]
    later = WriteBackTarget(client_id=square_customer["id"], appointment_id="visit-2")
    scale = checkin_instrument.scale
    all_well = {item.id: scale.min if item.reverse else scale.max
                for item in checkin_instrument.items}
    square.write_back(square_creds, later, square_note(answers=all_well, history=(80.0, 71.9)))
    stored = square_sandbox.custom_attribute(square_customer["id"], "rapport-alliance")
    assert (stored["value"], stored["version"]) == ("Alliance 100/100 ▃▁█ — 1 talking point", 2)


def test_a_response_that_could_not_be_scored_shows_no_score(square_note, checkin_instrument):
    unscored = {item.id: None for item in checkin_instrument.items}
    # The earlier visits' trend, and no score for this one.
    assert square.attribute_value(square_note(answers=unscored)) == (
        "Alliance ▆█▄ — 0 talking points")


def test_a_retried_upsert_is_not_applied_twice(square_sandbox, square_creds, square_customer,
                                               square_target, square_attribute_definition):
    square.write_back(square_creds, square_target, note())
    square.write_back(square_creds, square_target, note())
    posts = square_sandbox.requests_to(
        "POST", f"/v2/customers/{square_customer['id']}/custom-attributes/rapport-alliance"
    )
    keys = {request.json["idempotency_key"] for request in posts}
    assert len(posts) == 2 and len(keys) == 1
    assert square_sandbox.custom_attribute(square_customer["id"],
                                           "rapport-alliance")["version"] == 1


def test_a_missing_definition_is_created_on_the_way(square_sandbox, square_creds, square_customer,
                                                    square_target):
    square.write_back(square_creds, square_target, note())
    assert "rapport-alliance" in square_sandbox.definitions
    assert square_sandbox.custom_attribute(square_customer["id"],
                                           "rapport-alliance")["value"].startswith("Al")


def test_the_summary_line_can_be_given_whole():
    given = note(line="Alliance 64/100 ▇▅▂ — 3 talking points, one flag")
    assert square.attribute_value(given) == "Alliance 64/100 ▇▅▂ — 3 talking points, one flag"


def test_an_existing_definition_is_fine(square_sandbox, square_creds):
    body = {
        "idempotency_key": "made-by-an-earlier-install",
        "custom_attribute_definition": {
            "key": "rapport-alliance",
            "schema": {"$ref": square.STRING_SCHEMA},
            "visibility": "VISIBILITY_HIDDEN",
        },
    }
    headers = {"Authorization": f"Bearer {square_sandbox.personal_access_token}"}
    earlier = requests.post(
        square_sandbox.base_url + "/v2/customers/custom-attribute-definitions",
        json=body,
        headers=headers,
        timeout=5,
    )
    assert earlier.status_code == 200
    assert square.ensure_attribute_definition(square_creds)["key"] == "rapport-alliance"
    # Retrieved, not created again: one read, no second create.
    definitions = "/v2/customers/custom-attribute-definitions"
    assert len(square_sandbox.requests_to("POST", definitions)) == 1  # the earlier install's
    assert [r.status for r in square_sandbox.requests_to("GET",
                                                         f"{definitions}/rapport-alliance")] == [
        200
    ]


def test_connecting_again_reads_the_definition_instead_of_creating_it(square_sandbox, square_creds):
    square.ensure_attribute_definition(square_creds)
    square.ensure_attribute_definition(square_creds)
    assert len(square_sandbox.requests_to("POST",
                                          "/v2/customers/custom-attribute-definitions")) == 1


@pytest.mark.parametrize("refusal", [(409, "CONFLICT"), (400, "BAD_REQUEST")])
def test_a_definition_created_meanwhile_is_success_however_square_refuses_the_duplicate(
    square_sandbox, square_creds, refusal
):
    """Square does not document its answer to a duplicate key: whatever it is, the
    definition being there afterwards is what counts."""
    square_sandbox.duplicate_definition = refusal
    definitions = "/v2/customers/custom-attribute-definitions"
    # Another worker defines it between Rapport's read and its create.
    square_sandbox.before_next("POST", definitions, lambda: square_sandbox.definitions.setdefault(
        "rapport-alliance", {"key": "rapport-alliance", "name": "Rapport alliance",
                             "description": "d", "schema": {"$ref": square.STRING_SCHEMA},
                             "visibility": "VISIBILITY_READ_ONLY", "version": 1}))
    assert square.ensure_attribute_definition(square_creds)["key"] == "rapport-alliance"
    assert [r.status for r in square_sandbox.requests_to("POST", definitions)] == [refusal[0]]


def test_a_create_refused_for_another_reason_is_still_an_error(square_sandbox, square_creds):
    square_sandbox.fail_next("/v2/customers/custom-attribute-definitions", 400, method="POST",
                      code="INVALID_VALUE")
    with pytest.raises(PermanentError, match="INVALID_VALUE"):
        square.ensure_attribute_definition(square_creds)


# --- the next booking's seller note ----------------------------------------------------


@pytest.fixture
def square_next_booking(square_sandbox, square_customer):
    return square_sandbox.seed_booking(
        customer_id=square_customer["id"], start_at=NOW + timedelta(days=7),
        seller_note="Bring heat pack."
    )


def test_talking_points_go_on_the_next_booking(square_sandbox, square_creds, square_next_booking):
    assert square.write_seller_note(square_creds, square_next_booking["id"], note()) is True
    booking = square_sandbox.booking(square_next_booking["id"])
    assert booking["seller_note"] == "Bring heat pack.\n\n" + note().text
    assert booking["version"] == 1
    assert square.write_seller_note(square_creds, square_next_booking["id"], note()) is True
    assert len(square_sandbox.requests_to("PUT", f"/v2/bookings/{square_next_booking['id']}")) == 1


def test_a_stale_booking_version_is_reread(square_sandbox, square_creds, square_next_booking):
    path = f"/v2/bookings/{square_next_booking['id']}"
    square_sandbox.before_next(
        "PUT", path, lambda: square_sandbox.update_booking(square_next_booking["id"],
                                                           seller_note="Room 2.")
    )
    assert square.write_seller_note(square_creds, square_next_booking["id"], note()) is True
    assert [r.status for r in square_sandbox.requests_to("PUT", path)] == [409, 200]
    assert square_sandbox.booking(square_next_booking["id"])["seller_note"] == (
        "Room 2.\n\n" + note().text)


def test_a_cancelled_booking_is_left_alone(square_sandbox, square_creds, square_next_booking):
    square_sandbox.update_booking(square_next_booking["id"], status="CANCELLED_BY_CUSTOMER")
    assert square.write_seller_note(square_creds, square_next_booking["id"], note()) is False
    assert square_sandbox.requests_to("PUT", f"/v2/bookings/{square_next_booking['id']}") == []


# A therapist's own seller note, in French, with multi-byte characters and an emoji.
OWN_NOTE = (
    "Cliente fidèle, préfère une pression légère sur la nuque 🌿. Allergie à l'huile "
    "d'amande : utiliser l'huile de pépins de raisin. Éviter le côté gauche du dos. "
)
COMMENT_FR = "Séance très apaisante, mais l'épaule gauche était douloureuse 😣 — à revoir ?"


def own_note(length: int) -> str:
    return (OWN_NOTE * (length // len(OWN_NOTE) + 1))[:length].rstrip()


def whole_words_of(block: str, full: str) -> None:
    """Every line of ``block`` is a line of ``full``, or one cut between two words and
    marked "…": no word and no character is ever cut in half."""
    lines = full.splitlines()
    for line in block.splitlines():
        if line not in lines:
            assert line.endswith("…"), line
            assert any(whole.startswith(line[:-1] + " ") for whole in lines), line


@pytest.mark.parametrize("own_length", [3900, 3690])
def test_a_long_block_is_rendered_again_to_fit_beside_the_therapists_note(
    square_sandbox, square_creds, square_next_booking, square_note, own_length
):
    """The room left by the therapist's text takes the note's own shorter rendering:
    talking points before subscales, no word cut, the end marker on its own line."""
    own = own_note(own_length)
    square_sandbox.update_booking(square_next_booking["id"], seller_note=own)
    full = square_note(language="fr", comment=COMMENT_FR)
    assert len(own) + 2 + len(full.text) > square.SELLER_NOTE_LIMIT

    assert square.write_seller_note(square_creds, square_next_booking["id"], full) is True
    written = square_sandbox.booking(square_next_booking["id"])["seller_note"]
    assert len(written) <= square.SELLER_NOTE_LIMIT
    assert written.startswith(own + "\n\n")  # the therapist's text, byte for byte
    block = written[len(own) + 2 :]
    room = square.SELLER_NOTE_LIMIT - len(own) - 2
    assert block == full.render(room)  # the renderer's best fit for all the room there is
    lines = block.splitlines()
    assert (lines[0], lines[-1]) == (START, END)
    assert block.count(START) == block.count(END) == 1
    whole_words_of(block, full.text)
    assert "Prochaine visite :" in lines
    first_point = lines[lines.index("Prochaine visite :") + 1]
    assert first_point.startswith("- Reprenez les objectifs ensemble : avant de commencer")
    assert "Objectifs : 75,0" not in lines  # a subscale line gives way to talking points
    assert "😣" not in block  # and so does the comment


def test_room_around_a_block_already_there_is_what_counts(square_sandbox, square_creds,
                                                          square_next_booking, square_note):
    before, after = own_note(3500), "Salle 2 ☕"
    full = square_note(language="fr", comment=COMMENT_FR)
    square_sandbox.update_booking(square_next_booking["id"],
                                  seller_note=f"{before}\n{note().text}\n{after}")

    assert square.write_seller_note(square_creds, square_next_booking["id"], full) is True
    written = square_sandbox.booking(square_next_booking["id"])["seller_note"]
    room = square.SELLER_NOTE_LIMIT - len(before) - len(after) - 2
    assert written == f"{before}\n{full.render(room)}\n{after}"
    assert "- Avant de commencer, expliquez votre plan" in written


def test_no_room_beside_the_therapists_own_note(square_sandbox, square_creds, square_next_booking,
                                                square_note):
    """Even the smallest rendering (markers and overall score) does not fit: the booking
    is left alone."""
    own = own_note(4060)
    square_sandbox.update_booking(square_next_booking["id"], seller_note=own)
    assert square.write_seller_note(square_creds, square_next_booking["id"],
                                    square_note(language="fr")) is False
    assert square_sandbox.booking(square_next_booking["id"])["seller_note"] == own
    assert square_sandbox.requests_to("PUT", f"/v2/bookings/{square_next_booking['id']}") == []


def test_a_note_with_no_renderer_behind_it_is_never_cut(square_sandbox, square_creds,
                                                        square_next_booking):
    own = own_note(3000)
    square_sandbox.update_booking(square_next_booking["id"], seller_note=own)
    assert square.write_seller_note(square_creds, square_next_booking["id"],
                                    note("mot " * 400)) is False
    assert square_sandbox.booking(square_next_booking["id"])["seller_note"] == own


# --- install steps ---------------------------------------------------------------------


def test_subscribe_registers_booking_events_and_revocations(square_sandbox, square_creds):
    url = "https://rapport.example/webhooks/square/clinic-7"
    subscription = square.subscribe(square_creds, url)
    assert subscription["signature_key"] and subscription["subscription_id"].startswith("wbhk_")
    assert subscription["event_types"] == ["booking.created", "booking.updated",
                                           "oauth.authorization.revoked"]
    assert square.subscribe(square_creds, url) == subscription
    assert len(square_sandbox.subscriptions) == 1
    assert square_sandbox.subscriptions[0]["notification_url"] == url


def test_the_contract_holds_for_everything_rapport_sent(square_sandbox, square_creds,
                                                        square_customer, square_target):
    """The sandbox validates each body against Square's spec; none was refused."""
    booking = square_sandbox.seed_booking(customer_id=square_customer["id"],
                                          start_at=NOW + timedelta(days=1))
    square.ensure_attribute_definition(square_creds)
    square.write_back(square_creds, square_target, note())
    square.write_seller_note(square_creds, booking["id"], note())
    square.subscribe(square_creds, "https://rapport.example/webhooks/square/clinic-7")
    square.fetch_appointment(square_creds, booking["id"])
    assert square_sandbox.rejected == []
    # The only non-200: the definition looked up before it was created.
    assert [(r.method, r.path, r.status) for r in square_sandbox.requests if r.status != 200] == [
        ("GET", "/v2/customers/custom-attribute-definitions/rapport-alliance", 404)
    ]
