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
def client(sandbox):
    return sandbox.seed_customer(given_name="Sam", email_address="sam@example.com")


@pytest.fixture
def target(client):
    return WriteBackTarget(client_id=client["id"], appointment_id="visit-1")


@pytest.fixture
def definition(creds):
    square.ensure_attribute_definition(creds)


def customer_path(client) -> str:
    return f"/v2/customers/{client['id']}"


# --- reading -------------------------------------------------------------------------


def test_every_request_carries_the_pinned_version_and_the_token(sandbox, creds, client):
    square.fetch_client(creds, client["id"])
    sent = sandbox.requests[-1].headers
    assert sent["square-version"] == "2025-08-20" == square.SQUARE_VERSION
    assert sent["authorization"] == f"Bearer {sandbox.personal_access_token}"


def test_fetch_client_gives_email_and_first_name_but_no_locale(creds, client):
    fetched = square.fetch_client(creds, client["id"])
    assert (fetched.id, fetched.email, fetched.first_name) == (
        client["id"],
        "sam@example.com",
        "Sam",
    )
    assert fetched.locale is None


def test_fetch_appointment_derives_completion_from_the_end(sandbox, creds, client):
    start = NOW - timedelta(minutes=90)
    booking = sandbox.seed_booking(customer_id=client["id"], start_at=start, duration_minutes=60)
    done = square.fetch_appointment(creds, booking["id"], now=NOW)
    assert (done.status, done.start, done.end) == ("completed", start, start + timedelta(hours=1))
    assert (done.version, done.client.id, done.therapist.id) == (0, client["id"], "TMdanaRapport01")
    running = square.fetch_appointment(creds, booking["id"], now=start + timedelta(minutes=30))
    assert running.status == "booked"


@pytest.mark.parametrize(
    "status, expected",
    [("PENDING", "booked"), ("NO_SHOW", "no_show"), ("CANCELLED_BY_SELLER", "cancelled")],
)
def test_only_accepted_bookings_complete(sandbox, creds, client, status, expected):
    booking = sandbox.seed_booking(
        customer_id=client["id"], start_at=NOW - timedelta(days=1), status=status
    )
    assert square.fetch_appointment(creds, booking["id"], now=NOW).status == expected


def test_an_unknown_booking_is_a_permanent_error(creds):
    with pytest.raises(PermanentError, match="NOT_FOUND"):
        square.fetch_appointment(creds, "no-such-booking")


# --- the customer note ---------------------------------------------------------------


def test_the_block_is_replaced_and_the_therapists_text_kept(sandbox, creds, target, definition):
    before = "Prefers firm pressure.\n\n"
    after = "\n\nAllergic to arnica."
    sandbox.update_customer(target.client_id, note=f"{before}{START}\nold\n{END}{after}")
    result = square.write_back(creds, target, note())
    assert sandbox.customer(target.client_id)["note"] == before + note().text + after
    assert result.target == "square.customer"
    assert result.detail["note_updated"] is True


def test_a_block_in_a_note_with_windows_line_endings_is_replaced_not_repeated(
    sandbox, creds, target, definition
):
    # A note saved from a Windows or web form comes back with CRLF line endings.
    before = "Prefers firm pressure.\r\n\r\n"
    after = "\r\nAllergic to arnica."
    sandbox.update_customer(target.client_id, note=f"{before}{START}\r\nold\r\n{END}{after}")
    square.write_back(creds, target, note())
    assert sandbox.customer(target.client_id)["note"] == before + note().text + after


def test_a_first_note_goes_after_the_therapists_text(sandbox, creds, target, definition):
    sandbox.update_customer(target.client_id, note="Prefers firm pressure.")
    square.write_back(creds, target, note())
    assert sandbox.customer(target.client_id)["note"] == "Prefers firm pressure.\n\n" + note().text


def test_a_marker_inside_the_therapists_sentence_is_not_the_block(
    sandbox, creds, target, definition
):
    mine = f"Asked about the {START} emails, wants fewer.\nKnee surgery 2024.\n"
    sandbox.update_customer(target.client_id, note=f"{mine}\n{START}\nold\n{END}")
    square.write_back(creds, target, note())
    assert sandbox.customer(target.client_id)["note"] == f"{mine}\n{note().text}"


def test_the_therapists_own_line_breaks_are_kept_before_a_first_note(
    sandbox, creds, target, definition
):
    sandbox.update_customer(target.client_id, note="Prefers firm pressure.\n")
    square.write_back(creds, target, note())
    assert sandbox.customer(target.client_id)["note"] == "Prefers firm pressure.\n\n" + note().text


def test_the_same_write_twice_changes_nothing(sandbox, creds, client, target, definition):
    square.write_back(creds, target, note())
    version = sandbox.customer(client["id"])["version"]
    second = square.write_back(creds, target, note())
    assert sandbox.customer(client["id"])["version"] == version
    assert len(sandbox.requests_to("PUT", customer_path(client))) == 1
    assert second.detail["note_updated"] is False
    assert sandbox.custom_attribute(client["id"], square.ATTRIBUTE_KEY)["version"] == 1


def test_a_concurrent_edit_is_reread_and_kept(sandbox, creds, client, target, definition):
    sandbox.update_customer(client["id"], note="Prefers firm pressure.")

    def therapist_saves():
        current = sandbox.customer(client["id"])["note"]
        sandbox.update_customer(client["id"], note=current + "\nAsked for a quieter room.")

    sandbox.before_next("PUT", customer_path(client), therapist_saves)
    square.write_back(creds, target, note())
    puts = sandbox.requests_to("PUT", customer_path(client))
    assert [request.status for request in puts] == [409, 200]
    assert sandbox.customer(client["id"])["note"] == (
        "Prefers firm pressure.\nAsked for a quieter room.\n\n" + note().text
    )


def test_a_record_that_keeps_changing_is_a_conflict(sandbox, creds, client, target, definition):
    sandbox.fail_next(customer_path(client), 400, times=9, code="VERSION_MISMATCH", method="PUT")
    with pytest.raises(ConflictError):
        square.write_back(creds, target, note())
    assert len(sandbox.requests_to("PUT", customer_path(client))) == square.CONFLICT_ATTEMPTS


# --- errors from Square ----------------------------------------------------------------


def test_401_means_the_clinic_must_reconnect(sandbox, creds, target):
    sandbox.fail_next("/v2/customers/", 401)
    with pytest.raises(AuthError):
        square.write_back(creds, target, note())


def test_a_revoked_token_is_an_auth_error(sandbox, creds, client):
    sandbox.revoke(sandbox.personal_access_token)
    with pytest.raises(AuthError, match="ACCESS_TOKEN_REVOKED"):
        square.fetch_client(creds, client["id"])


def test_429_is_transient_and_carries_retry_after(sandbox, creds, target):
    sandbox.fail_next("/v2/customers/", 429, headers={"Retry-After": "7"})
    with pytest.raises(TransientError) as caught:
        square.write_back(creds, target, note())
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(sandbox, creds, target, status):
    sandbox.fail_next("/v2/customers/", status)
    with pytest.raises(TransientError) as caught:
        square.write_back(creds, target, note())
    assert caught.value.retry_after is None


def test_a_slow_square_is_a_timeout_not_a_hang(sandbox, client):
    sandbox.delay_next("/v2/customers/", 2.0)
    with pytest.raises(TransientError, match="Timeout"):
        square.fetch_client(sandbox.credentials(timeout=0.3), client["id"])


def test_an_unreachable_square_is_transient(client):
    with pytest.raises(TransientError):
        square.fetch_client({"access_token": "t", "base_url": "http://127.0.0.1:9"}, client["id"])


def test_an_answer_cut_off_mid_body_is_transient(client):
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
            square.fetch_client({"access_token": "t", "base_url": base_url}, client["id"])
    finally:
        server.close()


def test_other_4xx_are_permanent_with_squares_detail(sandbox, creds, client):
    sandbox.fail_next("/v2/customers/", 403, code="INSUFFICIENT_SCOPES")
    with pytest.raises(PermanentError, match="403 INSUFFICIENT_SCOPES"):
        square.fetch_client(creds, client["id"])


def test_no_token_is_an_auth_error_before_any_request(sandbox, client):
    with pytest.raises(AuthError):
        square.fetch_client({"base_url": sandbox.base_url}, client["id"])
    assert sandbox.requests == []


# --- the custom attribute --------------------------------------------------------------


def test_the_summary_attribute_is_upserted(
    sandbox, creds, client, target, definition, real_note, checkin
):
    """The line shows the score and trend of the summary every write-back carries
    (``wire_summary`` of a real assessment), not only the number of talking points."""
    result = square.write_back(creds, target, real_note())
    stored = sandbox.custom_attribute(client["id"], "rapport-alliance")
    assert stored["value"] == "Alliance 71.9/100 ▆█▄▁ — 3 talking points"
    assert stored["visibility"] == "VISIBILITY_READ_ONLY"
    assert result.detail["attribute_value"] == stored["value"]
    later = WriteBackTarget(client_id=client["id"], appointment_id="visit-2")
    scale = checkin.scale
    all_well = {item.id: scale.min if item.reverse else scale.max for item in checkin.items}
    square.write_back(creds, later, real_note(answers=all_well, history=(80.0, 71.9)))
    stored = sandbox.custom_attribute(client["id"], "rapport-alliance")
    assert (stored["value"], stored["version"]) == ("Alliance 100/100 ▃▁█ — 1 talking point", 2)


def test_a_response_that_could_not_be_scored_shows_no_score(real_note, checkin):
    unscored = {item.id: None for item in checkin.items}
    # The earlier visits' trend, and no score for this one.
    assert square.attribute_value(real_note(answers=unscored)) == "Alliance ▆█▄ — 0 talking points"


def test_a_retried_upsert_is_not_applied_twice(sandbox, creds, client, target, definition):
    square.write_back(creds, target, note())
    square.write_back(creds, target, note())
    posts = sandbox.requests_to(
        "POST", f"/v2/customers/{client['id']}/custom-attributes/rapport-alliance"
    )
    keys = {request.json["idempotency_key"] for request in posts}
    assert len(posts) == 2 and len(keys) == 1
    assert sandbox.custom_attribute(client["id"], "rapport-alliance")["version"] == 1


def test_a_missing_definition_is_created_on_the_way(sandbox, creds, client, target):
    square.write_back(creds, target, note())
    assert "rapport-alliance" in sandbox.definitions
    assert sandbox.custom_attribute(client["id"], "rapport-alliance")["value"].startswith("Al")


def test_the_summary_line_can_be_given_whole():
    given = note(line="Alliance 64/100 ▇▅▂ — 3 talking points, one flag")
    assert square.attribute_value(given) == "Alliance 64/100 ▇▅▂ — 3 talking points, one flag"


def test_an_existing_definition_is_fine(sandbox, creds):
    body = {
        "idempotency_key": "made-by-an-earlier-install",
        "custom_attribute_definition": {
            "key": "rapport-alliance",
            "schema": {"$ref": square.STRING_SCHEMA},
            "visibility": "VISIBILITY_HIDDEN",
        },
    }
    headers = {"Authorization": f"Bearer {sandbox.personal_access_token}"}
    earlier = requests.post(
        sandbox.base_url + "/v2/customers/custom-attribute-definitions",
        json=body,
        headers=headers,
        timeout=5,
    )
    assert earlier.status_code == 200
    assert square.ensure_attribute_definition(creds)["key"] == "rapport-alliance"
    # Retrieved, not created again: one read, no second create.
    definitions = "/v2/customers/custom-attribute-definitions"
    assert len(sandbox.requests_to("POST", definitions)) == 1  # the earlier install's
    assert [r.status for r in sandbox.requests_to("GET", f"{definitions}/rapport-alliance")] == [
        200
    ]


def test_connecting_again_reads_the_definition_instead_of_creating_it(sandbox, creds):
    square.ensure_attribute_definition(creds)
    square.ensure_attribute_definition(creds)
    assert len(sandbox.requests_to("POST", "/v2/customers/custom-attribute-definitions")) == 1


@pytest.mark.parametrize("refusal", [(409, "CONFLICT"), (400, "BAD_REQUEST")])
def test_a_definition_created_meanwhile_is_success_however_square_refuses_the_duplicate(
    sandbox, creds, refusal
):
    """Square does not document its answer to a duplicate key: whatever it is, the
    definition being there afterwards is what counts."""
    sandbox.duplicate_definition = refusal
    definitions = "/v2/customers/custom-attribute-definitions"
    # Another worker defines it between Rapport's read and its create.
    sandbox.before_next("POST", definitions, lambda: sandbox.definitions.setdefault(
        "rapport-alliance", {"key": "rapport-alliance", "name": "Rapport alliance",
                             "description": "d", "schema": {"$ref": square.STRING_SCHEMA},
                             "visibility": "VISIBILITY_READ_ONLY", "version": 1}))
    assert square.ensure_attribute_definition(creds)["key"] == "rapport-alliance"
    assert [r.status for r in sandbox.requests_to("POST", definitions)] == [refusal[0]]


def test_a_create_refused_for_another_reason_is_still_an_error(sandbox, creds):
    sandbox.fail_next("/v2/customers/custom-attribute-definitions", 400, method="POST",
                      code="INVALID_VALUE")
    with pytest.raises(PermanentError, match="INVALID_VALUE"):
        square.ensure_attribute_definition(creds)


# --- the next booking's seller note ----------------------------------------------------


@pytest.fixture
def next_visit(sandbox, client):
    return sandbox.seed_booking(
        customer_id=client["id"], start_at=NOW + timedelta(days=7), seller_note="Bring heat pack."
    )


def test_talking_points_go_on_the_next_booking(sandbox, creds, next_visit):
    assert square.write_seller_note(creds, next_visit["id"], note()) is True
    booking = sandbox.booking(next_visit["id"])
    assert booking["seller_note"] == "Bring heat pack.\n\n" + note().text
    assert booking["version"] == 1
    assert square.write_seller_note(creds, next_visit["id"], note()) is True
    assert len(sandbox.requests_to("PUT", f"/v2/bookings/{next_visit['id']}")) == 1


def test_a_stale_booking_version_is_reread(sandbox, creds, next_visit):
    path = f"/v2/bookings/{next_visit['id']}"
    sandbox.before_next(
        "PUT", path, lambda: sandbox.update_booking(next_visit["id"], seller_note="Room 2.")
    )
    assert square.write_seller_note(creds, next_visit["id"], note()) is True
    assert [r.status for r in sandbox.requests_to("PUT", path)] == [409, 200]
    assert sandbox.booking(next_visit["id"])["seller_note"] == "Room 2.\n\n" + note().text


def test_a_cancelled_booking_is_left_alone(sandbox, creds, next_visit):
    sandbox.update_booking(next_visit["id"], status="CANCELLED_BY_CUSTOMER")
    assert square.write_seller_note(creds, next_visit["id"], note()) is False
    assert sandbox.requests_to("PUT", f"/v2/bookings/{next_visit['id']}") == []


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
    marked "…": no word and no character is ever cut in half. The first line may name
    only the first of its concerns (then how many more)."""
    lines = full.splitlines()
    first_concern = lines[1].split(" ; ")[0]
    for line in block.splitlines():
        if line.startswith(first_concern):
            continue
        if line not in lines:
            assert line.endswith("…"), line
            assert any(whole.startswith(line[:-1] + " ") for whole in lines), line


@pytest.mark.parametrize("own_length", [3900, 3690])
def test_a_long_block_is_rendered_again_to_fit_beside_the_therapists_note(
    sandbox, creds, next_visit, real_note, own_length
):
    """The room left by the therapist's text takes the note's own shorter rendering: the
    first line, then talking points before subscales, no word cut, the end marker on its
    own line."""
    own = own_note(own_length)
    sandbox.update_booking(next_visit["id"], seller_note=own)
    full = real_note(language="fr", comment=COMMENT_FR)
    assert len(own) + 2 + len(full.text) > square.SELLER_NOTE_LIMIT

    assert square.write_seller_note(creds, next_visit["id"], full) is True
    written = sandbox.booking(next_visit["id"])["seller_note"]
    assert len(written) <= square.SELLER_NOTE_LIMIT
    assert written.startswith(own + "\n\n")  # the therapist's text, byte for byte
    block = written[len(own) + 2 :]
    room = square.SELLER_NOTE_LIMIT - len(own) - 2
    assert block == full.render(room)  # the renderer's best fit for all the room there is
    lines = block.splitlines()
    assert (lines[0], lines[-1]) == (START, END)
    assert block.count(START) == block.count(END) == 1
    whole_words_of(block, full.text)
    assert lines[1].startswith("À surveiller : ")  # the first line, first
    assert "Prochaine visite :" in lines
    first_point = lines[lines.index("Prochaine visite :") + 1]
    assert first_point.startswith("- Commencez la prochaine séance")
    # A subscale line gives way to talking points.
    assert not any(line.startswith("Objectifs") for line in lines)
    assert "😣" not in block  # and so does the comment


def test_room_around_a_block_already_there_is_what_counts(sandbox, creds, next_visit, real_note):
    before, after = own_note(3500), "Salle 2 ☕"
    full = real_note(language="fr", comment=COMMENT_FR)
    sandbox.update_booking(next_visit["id"], seller_note=f"{before}\n{note().text}\n{after}")

    assert square.write_seller_note(creds, next_visit["id"], full) is True
    written = sandbox.booking(next_visit["id"])["seller_note"]
    room = square.SELLER_NOTE_LIMIT - len(before) - len(after) - 2
    assert written == f"{before}\n{full.render(room)}\n{after}"
    assert "- Avant de commencer, expliquez votre plan" in written


def test_no_room_beside_the_therapists_own_note(sandbox, creds, next_visit, real_note):
    """Even the smallest rendering (markers and overall score) does not fit: the booking
    is left alone."""
    own = own_note(4060)
    sandbox.update_booking(next_visit["id"], seller_note=own)
    assert square.write_seller_note(creds, next_visit["id"], real_note(language="fr")) is False
    assert sandbox.booking(next_visit["id"])["seller_note"] == own
    assert sandbox.requests_to("PUT", f"/v2/bookings/{next_visit['id']}") == []


def test_a_note_with_no_renderer_behind_it_is_never_cut(sandbox, creds, next_visit):
    own = own_note(3000)
    sandbox.update_booking(next_visit["id"], seller_note=own)
    assert square.write_seller_note(creds, next_visit["id"], note("mot " * 400)) is False
    assert sandbox.booking(next_visit["id"])["seller_note"] == own


# --- install steps ---------------------------------------------------------------------


def test_subscribe_registers_booking_events_and_revocations(sandbox, creds):
    url = "https://rapport.example/webhooks/square/clinic-7"
    subscription = square.subscribe(creds, url)
    assert subscription["signature_key"] and subscription["subscription_id"].startswith("wbhk_")
    assert subscription["event_types"] == ["booking.created", "booking.updated",
                                           "oauth.authorization.revoked"]
    assert square.subscribe(creds, url) == subscription
    assert len(sandbox.subscriptions) == 1
    assert sandbox.subscriptions[0]["notification_url"] == url


def test_the_contract_holds_for_everything_rapport_sent(sandbox, creds, client, target):
    """The sandbox validates each body against Square's spec; none was refused."""
    booking = sandbox.seed_booking(customer_id=client["id"], start_at=NOW + timedelta(days=1))
    square.ensure_attribute_definition(creds)
    square.write_back(creds, target, note())
    square.write_seller_note(creds, booking["id"], note())
    square.subscribe(creds, "https://rapport.example/webhooks/square/clinic-7")
    square.fetch_appointment(creds, booking["id"])
    assert sandbox.rejected == []
    # The only non-200: the definition looked up before it was created.
    assert [(r.method, r.path, r.status) for r in sandbox.requests if r.status != 200] == [
        ("GET", "/v2/customers/custom-attribute-definitions/rapport-alliance", 404)
    ]
