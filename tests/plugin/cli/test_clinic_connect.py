"""Adding a clinic and changing how it connects: `rapport clinic add`, `rapport clinic
rotate-secret`, `rapport clinic <platform>`."""

from __future__ import annotations

import json

import pytest


def test_clinic_add_json_prints_key_url_and_both_secrets(cli):
    result = cli("clinic", "add", "--name", "Harbour Massage", "--platform", "generic",
                 "--callback-url", "https://booking.example/hooks", "--timezone",
                 "Europe/Paris", "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["webhook_url"] == f"https://rapport.example/webhooks/generic/{created['key']}"
    assert created["webhook_secret"].startswith("whsec_")
    assert created["callback_secret"].startswith("whsec_")
    assert created["webhook_secret"] != created["callback_secret"]


def test_clinic_add_prints_plainly(cli):
    result = cli("clinic", "add", "--name", "Harbour", "--platform", "generic",
                 "--callback-url", "https://booking.example/hooks")
    assert result.exit_code == 0
    assert "Webhook URL:" in result.output and "Callback signing secret:" in result.output


@pytest.mark.parametrize("args, message", [
    (["--platform", "generic"], "--callback-url is required"),
    (["--platform", "generic", "--callback-url", "ftp://x"], "must be an http(s) URL"),
    (["--platform", "generic", "--callback-url", "https://x.example", "--timezone", "Mars/Base"],
     "unknown time zone 'Mars/Base'"),
])
def test_clinic_add_errors_say_what_to_do(cli, args, message):
    result = cli("clinic", "add", "--name", "Harbour", *args)
    assert result.exit_code == 1
    assert message in result.output


def test_the_square_command_on_a_generic_clinic_points_to_rotate_secret(cli, cli_clinic_key):
    result = cli("clinic", "square", cli_clinic_key, "--access-token", "x")
    assert result.exit_code == 1
    assert "is a generic clinic" in result.output
    assert "rapport clinic rotate-secret" in result.output


def test_rotate_secret_keeps_the_old_one_until_retired(cli, cli_clinic_key):
    result = cli("clinic", "rotate-secret", cli_clinic_key)
    assert result.exit_code == 0
    assert "New webhook secret: whsec_" in result.output
    assert "--retire-old" in result.output
    assert cli("clinic", "rotate-secret", cli_clinic_key, "--retire-old").exit_code == 0


def test_a_square_clinic_needs_squares_sign_in_set_up_first(cli):
    result = cli("clinic", "add", "--name", "Harbour", "--platform", "square")
    assert result.exit_code == 1
    assert "set RAPPORT_SQUARE_APPLICATION_ID and RAPPORT_SQUARE_APPLICATION_SECRET" in (
        result.output)
    assert "No clinics yet" in cli("clinic", "list").output


def test_square_clinic_shows_its_connect_link_until_connected(cli, monkeypatch):
    monkeypatch.setenv("RAPPORT_SQUARE_APPLICATION_ID", "sq0idp-rapport")
    monkeypatch.setenv("RAPPORT_SQUARE_APPLICATION_SECRET", "sq0csp-secret")
    created = json.loads(cli("clinic", "add", "--name", "Harbour", "--platform", "square",
                             "--json").output)
    assert created["connect_url"] == f"https://rapport.example/connect/square/{created['key']}"
    assert "webhook_url" not in created  # its events come on the application's subscription
    plain = cli("clinic", "add", "--name", "Harbour 2", "--platform", "square").output
    assert "Connect Square at:" in plain and "Webhook URL:" not in plain
    listed = cli("clinic", "list").output
    assert "NOT CONNECTED YET" in listed
    assert f"Connect Square: {created['connect_url']}" in listed


def add_manual_square(cli, token):
    return cli("clinic", "add", "--name", "Harbour", "--platform", "square",
               "--access-token", token, "--webhook-signature-key", "key-1",
               "--notification-url", "https://rapport.example/webhooks/square/harbour",
               "--json")


def test_square_manual_mode_takes_its_key_from_the_notification_url(
    square_cli, square_sandbox
):
    rapport = square_cli
    result = add_manual_square(rapport, square_sandbox.personal_access_token)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["key"] == "harbour"
    rotated = rapport("clinic", "square", "harbour", "--add-signature-key", "key-2")
    assert "2 signature key(s) accepted" in rotated.output
    retired = rapport("clinic", "square", "harbour", "--retire-old-keys")
    assert "1 signature key(s) accepted" in retired.output


def test_square_manual_mode_with_a_partial_set_of_options_says_what_is_missing(cli):
    result = cli("clinic", "add", "--name", "Harbour", "--platform", "square",
                 "--access-token", "EAAAtoken")
    assert result.exit_code == 1
    assert "--webhook-signature-key, --notification-url also required" in result.output


def test_square_manual_mode_defines_the_attribute_at_install(square_cli, square_sandbox):
    assert add_manual_square(square_cli, square_sandbox.personal_access_token).exit_code == 0
    assert square_sandbox.definitions["rapport-alliance"]["visibility"] == "VISIBILITY_READ_ONLY"
    (used,) = square_sandbox.requests_to(
        "GET", "/v2/customers/custom-attribute-definitions/rapport-alliance")
    assert used.headers["authorization"] == f"Bearer {square_sandbox.personal_access_token}"


def test_a_square_clinic_takes_the_time_zone_and_language_from_its_main_location(
    square_cli, square_sandbox
):
    square_sandbox.main_location.update(timezone="America/Toronto", language_code="fr-CA")
    result = add_manual_square(square_cli, square_sandbox.personal_access_token)
    assert result.exit_code == 0, result.output
    added = json.loads(result.output)
    assert (added["timezone"], added["language"]) == ("America/Toronto", "fr")
    assert square_sandbox.requests_to("GET", "/v2/locations/main")


def test_a_time_zone_given_on_the_command_line_wins_over_squares(square_cli, square_sandbox):
    square_sandbox.main_location.update(timezone="America/Toronto", language_code="es-US")
    result = square_cli(
        "clinic", "add", "--name", "Harbour", "--platform", "square", "--timezone",
        "Europe/Madrid", "--access-token", square_sandbox.personal_access_token,
        "--webhook-signature-key", "key-1",
        "--notification-url", "https://rapport.example/webhooks/square/harbour")
    assert result.exit_code == 0, result.output
    assert "Europe/Madrid" in result.output and "America/Toronto" not in result.output
    assert "Note language:             es" in result.output


def test_square_manual_mode_with_a_token_square_refuses_saves_nothing(
    square_cli, square_sandbox
):
    result = add_manual_square(square_cli, "EAAA-not-a-real-token")
    assert result.exit_code == 1
    assert "Square refused the access token" in result.output
    assert "sandbox environment" in result.output
    assert "No clinics yet" in square_cli("clinic", "list").output


def test_a_new_manual_token_is_tried_before_it_is_saved(square_cli, square_sandbox):
    add_manual_square(square_cli, square_sandbox.personal_access_token)
    refused = square_cli("clinic", "square", "harbour", "--access-token", "EAAA-wrong")
    assert refused.exit_code == 1 and "Square refused the access token" in refused.output
    accepted = square_cli("clinic", "square", "harbour", "--access-token",
                          square_sandbox.personal_access_token)
    assert accepted.exit_code == 0 and "Saved." in accepted.output
