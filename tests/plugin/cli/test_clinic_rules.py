"""A clinic's check-in rules: `rapport clinic configure`."""

from __future__ import annotations

import json

import pytest


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


def test_a_new_window_re_plans_the_check_ins_waiting_to_be_sent(cli, cli_clinic_key):
    result = cli("clinic", "configure", cli_clinic_key, "--window", "00:00-24:00")
    assert result.exit_code == 0, result.output
    assert result.stderr == "0 pending check-in(s) re-planned to the new timing.\n"
    untimed = cli("clinic", "configure", cli_clinic_key, "--quiet-days", "3")
    assert untimed.stderr == ""  # nothing that moves a send time changed
