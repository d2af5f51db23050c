"""Fixtures for the rapport command's tests: the command as an admin types it, on an
instance folder of the test's own. Names say they are the command's."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from plugin.cli import main
from tests.support import databases


@pytest.fixture
def cli(monkeypatch, tmp_path, redis_conn, redis_url, sqlite_template):
    """``cli("clinic", "list")``: runs the rapport command, configured by ``RAPPORT_*``
    variables only; its database (the default, in the instance folder) starts migrated."""
    instance = tmp_path / "instance"
    databases.sqlite_copy(sqlite_template, instance / "rapport.db")
    monkeypatch.setenv("RAPPORT_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("RAPPORT_REDIS_URL", redis_url)
    monkeypatch.setenv("RAPPORT_SECRET_KEY", "cli-test-secret-key-0123456789")
    monkeypatch.setenv("RAPPORT_BASE_URL", "https://rapport.example")
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def cli_clinic_key(cli):
    """The key of a generic clinic added with ``rapport clinic add``."""
    result = cli("clinic", "add", "--name", "Harbour", "--platform", "generic",
                 "--callback-url", "https://booking.example/hooks", "--json")
    return json.loads(result.output)["key"]


@pytest.fixture
def square_cli(cli, monkeypatch, square_sandbox):
    """The rapport command, with Square's API at the local Square sandbox."""
    monkeypatch.setenv("RAPPORT_SQUARE_ENVIRONMENT", "sandbox")
    monkeypatch.setenv("RAPPORT_SQUARE_BASE_URL", square_sandbox.base_url)
    return cli
