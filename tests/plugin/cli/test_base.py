"""What every command shares: settings refused plainly, a clinic key that names nothing, a
service out of reach named by its variable, passwords never shown."""

from __future__ import annotations

import json
import socket

import pytest


def test_missing_production_settings_are_a_plain_error(monkeypatch, cli):
    monkeypatch.delenv("RAPPORT_SECRET_KEY")
    result = cli("clinic", "list")
    assert result.exit_code == 1
    assert "RAPPORT_SECRET_KEY not set" in result.output


def test_unknown_clinic_key_says_how_to_find_it(cli):
    result = cli("clinic", "configure", "nope", "--quiet-days", "3")
    assert result.exit_code == 1
    assert "rapport clinic list" in result.output


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
