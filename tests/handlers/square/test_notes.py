"""The customer note and the custom attribute: Rapport's block replaced in place, the
therapist's text kept byte for byte, concurrent edits re-read, nothing applied twice."""

from __future__ import annotations

import pytest

from handlers import square
from handlers.base import (
    ConflictError,
    WriteBackTarget,
)
from tests.handlers.square.shared import END, START, customer_path, note


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
