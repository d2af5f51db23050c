"""A clinic's data: `rapport clinic send-test`."""

from __future__ import annotations


def test_send_test_refuses_what_is_not_an_email_address(cli, cli_clinic_key):
    result = cli("clinic", "send-test", cli_clinic_key, "--to", "notanemail")
    assert result.exit_code == 2
    assert "'notanemail' is not an email address" in result.output
