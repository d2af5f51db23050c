"""The rapport command, as an admin types it."""

from __future__ import annotations

import json
import socket

import pytest
from click.testing import CliRunner

from plugin.cli import main
from tests.support.rapport import ROOT


@pytest.fixture
def cli(monkeypatch, tmp_path, redis_conn, redis_url):
    monkeypatch.setenv("RAPPORT_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("RAPPORT_REDIS_URL", redis_url)
    monkeypatch.setenv("RAPPORT_SECRET_KEY", "cli-test-secret-key-0123456789")
    monkeypatch.setenv("RAPPORT_BASE_URL", "https://rapport.example")
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args), catch_exceptions=False)


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


def test_clinic_list_shows_health(cli):
    assert "No clinics yet" in cli("clinic", "list").output
    cli("clinic", "add", "--name", "Harbour", "--platform", "generic",
        "--callback-url", "https://booking.example/hooks")
    listed = cli("clinic", "list").output
    assert "Harbour" in listed and "OK" in listed and "last event: none yet" in listed
    rows = json.loads(cli("clinic", "list", "--json").output)
    assert rows[0]["status"] == "active"


def test_retry_write_backs_says_when_there_is_nothing_to_retry(cli):
    created = json.loads(cli("clinic", "add", "--name", "Harbour", "--platform", "generic",
                             "--callback-url", "https://booking.example/hooks",
                             "--json").output)
    result = cli("clinic", "retry-write-backs", created["key"])
    assert result.exit_code == 0 and "No failed write-backs." in result.output


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


def test_missing_production_settings_are_a_plain_error(monkeypatch, cli):
    monkeypatch.delenv("RAPPORT_SECRET_KEY")
    result = cli("clinic", "list")
    assert result.exit_code == 1
    assert "RAPPORT_SECRET_KEY not set" in result.output


def test_worker_burst_drains_and_exits(cli):
    result = cli("worker", "--burst")
    assert result.exit_code == 0


@pytest.fixture
def cli_clinic_key(cli):
    result = cli("clinic", "add", "--name", "Harbour", "--platform", "generic",
                 "--callback-url", "https://booking.example/hooks", "--json")
    return json.loads(result.output)["key"]


def test_configure_changes_rules_and_prints_every_setting(cli, cli_clinic_key):
    result = cli("clinic", "configure", cli_clinic_key, "--send-delay-minutes", "60",
                 "--window", "08:30-19:00", "--quiet-days", "30",
                 "--later-instrument", "rapport-checkin", "--drop-threshold", "15",
                 "--timezone", "America/Toronto")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)  # stderr says how many check-ins were re-planned
    assert shown["timezone"] == "America/Toronto"
    assert shown["timing"]["send_delay_minutes"] == 60
    assert (shown["timing"]["window_start"], shown["timing"]["window_end"]) == (
        "08:30", "19:00")
    assert shown["timing"]["reminder_after_hours"] == 48  # untouched default
    assert shown["instrument"] == {"early": "rapport-checkin", "early_visits": 3,
                                   "later": "rapport-checkin"}
    assert shown["flags"]["drop_threshold"] == 15


@pytest.mark.parametrize("args, message", [
    (["--window", "20:00-09:00"], "is not after its start"),
    (["--window", "9am-5pm"], "is not a time of day"),
    (["--instrument", "no-such-thing"], "no instrument 'no-such-thing'"),
    (["--drop-threshold", "150"], "between 0 and 100"),
    (["--expire-after-days", "0"], "must stay open"),
])
def test_configure_refuses_bad_settings_plainly(cli, cli_clinic_key, args, message):
    result = cli("clinic", "configure", cli_clinic_key, *args)
    assert result.exit_code == 1
    assert message in result.output


def test_configure_says_when_the_reminder_would_come_after_the_link_closes(
    cli, cli_clinic_key
):
    result = cli("clinic", "configure", cli_clinic_key, "--reminder-after-hours", "500")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["timing"]["reminder_after_hours"] == 500
    assert ("No reminder goes out: at 500 hours it would come after the link closes "
            "(7 days).") in result.stderr
    usual = cli("clinic", "configure", cli_clinic_key, "--reminder-after-hours", "48")
    assert "No reminder" not in usual.stderr


def test_send_test_refuses_what_is_not_an_email_address(cli, cli_clinic_key):
    result = cli("clinic", "send-test", cli_clinic_key, "--to", "notanemail")
    assert result.exit_code == 2
    assert "'notanemail' is not an email address" in result.output


def test_the_square_command_on_a_generic_clinic_points_to_rotate_secret(cli, cli_clinic_key):
    result = cli("clinic", "square", cli_clinic_key, "--access-token", "x")
    assert result.exit_code == 1
    assert "is a generic clinic" in result.output
    assert "rapport clinic rotate-secret" in result.output


def test_unknown_clinic_key_says_how_to_find_it(cli):
    result = cli("clinic", "configure", "nope", "--quiet-days", "3")
    assert result.exit_code == 1
    assert "rapport clinic list" in result.output


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


@pytest.fixture
def square_cli(cli, monkeypatch, square_sandbox):
    """The rapport command, with Square's API at the local Square sandbox."""
    monkeypatch.setenv("RAPPORT_SQUARE_ENVIRONMENT", "sandbox")
    monkeypatch.setenv("RAPPORT_SQUARE_BASE_URL", square_sandbox.base_url)
    return cli


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


@pytest.fixture
def licensed_folder(tmp_path):
    """A clinic's folder holding a filled-in copy of the WAI-SR template."""
    import re

    template = ROOT / "questionnaires" / "licensed"
    text = (template / "wai-sr.template.yaml").read_text(encoding="utf-8")
    folder = tmp_path / "licensed"
    folder.mkdir()
    (folder / "wai-sr.yaml").write_text(re.sub(r"<<[^<>]*>>", "wording", text), encoding="utf-8")
    return folder


def test_questionnaires_commands_read_the_folder_from_rapport_cfg(
        monkeypatch, tmp_path, licensed_folder):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "rapport.cfg").write_text(f"QUESTIONNAIRES_DIR = {str(licensed_folder)!r}\n")
    monkeypatch.setenv("RAPPORT_INSTANCE_PATH", str(instance))
    monkeypatch.delenv("RAPPORT_QUESTIONNAIRES_DIR", raising=False)
    runner = CliRunner()

    listed = runner.invoke(main, ["questionnaires", "list"])
    checked = runner.invoke(main, ["questionnaires", "check"])

    assert listed.exit_code == 0, listed.output
    assert [line.split("  ")[0] for line in listed.stdout.splitlines()] == [
        "rapport-checkin", "rapport-pulse", "wai-sr"]
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.splitlines()[-1] == f"OK {licensed_folder / 'wai-sr.yaml'} (wai-sr v1)"


def test_questionnaires_commands_let_the_environment_override_rapport_cfg(
        monkeypatch, tmp_path, licensed_folder):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "rapport.cfg").write_text(f"QUESTIONNAIRES_DIR = {str(tmp_path / 'old')!r}\n")
    monkeypatch.setenv("RAPPORT_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("RAPPORT_QUESTIONNAIRES_DIR", str(licensed_folder))

    result = CliRunner().invoke(main, ["questionnaires", "score", "wai-sr", "--answers",
                                       json.dumps({f"wai-{n}": 3 for n in range(1, 13)})])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == "Overall: raw 36 (range 12–60), 50.0/100"


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


def test_an_all_digit_secret_key_is_kept_as_text(cli, monkeypatch):
    monkeypatch.setenv("RAPPORT_SECRET_KEY", "12345678901234567890")
    result = cli("clinic", "add", "--name", "Harbour", "--platform", "generic",
                 "--callback-url", "https://booking.example/hooks", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["webhook_secret"].startswith("whsec_")


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_redis_out_of_reach_is_one_plain_error_naming_the_variable(cli, monkeypatch):
    port = unused_port()
    monkeypatch.setenv("RAPPORT_REDIS_URL", f"redis://:s3cret@127.0.0.1:{port}/0")
    result = cli("worker", "--burst")
    assert result.exit_code == 1
    first, second = result.output.splitlines()
    assert first.startswith(f"Error: could not reach Redis at redis://:***@127.0.0.1:{port}/0: ")
    assert "Connection refused" in first and "s3cret" not in result.output
    assert second.endswith("or set RAPPORT_REDIS_URL to one that does.")


def test_database_out_of_reach_is_one_plain_error_naming_the_variable(cli, monkeypatch):
    port = unused_port()
    monkeypatch.setenv("RAPPORT_DATABASE_URL", f"postgresql://rapport:s3cret@127.0.0.1:{port}/db")
    result = cli("clinic", "list")
    assert result.exit_code == 1
    first, second = result.output.splitlines()
    assert first.startswith(
        f"Error: could not reach the database at postgresql://rapport:***@127.0.0.1:{port}/db: ")
    assert "Connection refused" in first and "s3cret" not in result.output
    assert second.endswith("or set RAPPORT_DATABASE_URL to one that does.")


def test_a_new_window_re_plans_the_check_ins_waiting_to_be_sent(cli, cli_clinic_key):
    result = cli("clinic", "configure", cli_clinic_key, "--window", "00:00-24:00")
    assert result.exit_code == 0, result.output
    assert result.stderr == "0 pending check-in(s) re-planned to the new timing.\n"
    untimed = cli("clinic", "configure", cli_clinic_key, "--quiet-days", "3")
    assert untimed.stderr == ""  # nothing that moves a send time changed


@pytest.mark.parametrize("url, shown", [
    ("redis://:pw@redis.internal:6379/0", "redis://:***@redis.internal:6379/0"),
    ("postgresql://rapport:pw@db:5432/rapport", "postgresql://rapport:***@db:5432/rapport"),
    ("rediss://cache:6380/0?password=pw", "rediss://cache:6380/0?password=***"),
    ("unix:///var/lib/rapport/redis.sock", "unix:///var/lib/rapport/redis.sock"),
    ("unix:///run/redis.sock?db=0&password=pw", "unix:///run/redis.sock?db=0&password=***"),
    ("sqlite:////srv/rapport/rapport.db", "sqlite:////srv/rapport/rapport.db"),
])
def test_urls_in_errors_never_show_a_password(url, shown):
    from plugin.cli.base import masked

    assert masked(url) == shown


def test_clinic_list_names_instrument_files_it_skipped(cli, monkeypatch, tmp_path):
    folder = tmp_path / "licensed"
    folder.mkdir()
    (folder / "broken.yaml").write_text("id: broken\ntitle: {en: Broken\n", encoding="utf-8")
    monkeypatch.setenv("RAPPORT_QUESTIONNAIRES_DIR", str(folder))
    listed = cli("clinic", "list", "--json")
    assert listed.exit_code == 0
    assert json.loads(listed.stdout) == []
    assert "Licensed instrument files skipped" in listed.stderr
    assert f"{folder / 'broken.yaml'}: line" in listed.stderr
