"""The talking points on a client's next booking: Square's seller note, shared with the
therapist's own text, within Square's limit and never cutting a word."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers import square
from tests.handlers.square.shared import END, NOW, START, note

# A therapist's own seller note, in French, with multi-byte characters and an emoji.
OWN_NOTE = (
    "Cliente fidèle, préfère une pression légère sur la nuque 🌿. Allergie à l'huile "
    "d'amande : utiliser l'huile de pépins de raisin. Éviter le côté gauche du dos. "
)
COMMENT_FR = "Séance très apaisante, mais l'épaule gauche était douloureuse 😣 — à revoir ?"


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
    square_sandbox, square_creds, square_next_booking, square_note, own_length
):
    """The room left by the therapist's text takes the note's own shorter rendering: the
    first line, then talking points before subscales, no word cut, the end marker on its
    own line."""
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
    assert lines[1].startswith("À surveiller : ")  # the first line, first
    assert "Prochaine visite :" in lines
    first_point = lines[lines.index("Prochaine visite :") + 1]
    assert first_point.startswith("- Commencez la prochaine séance")
    # A subscale line gives way to talking points.
    assert not any(line.startswith("Objectifs") for line in lines)
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
