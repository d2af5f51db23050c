"""Configuration: defaults, then the instance folder, then RAPPORT_* variables."""

from __future__ import annotations

import pytest

from plugin import create_app
from plugin.config import ConfigurationError
from tests.support.rapport import ROOT


@pytest.fixture
def clean_env(monkeypatch, tmp_path, redis_url):
    import os

    for name in list(os.environ):
        if name.startswith("RAPPORT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RAPPORT_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("RAPPORT_REDIS_URL", redis_url)
    return monkeypatch


@pytest.fixture
def production_env(clean_env):
    """What production needs set, and nothing more: a test changes one setting on top."""
    clean_env.setenv("RAPPORT_SECRET_KEY", "a-long-enough-secret-key")
    clean_env.setenv("RAPPORT_BASE_URL", "https://rapport.example")
    return clean_env


def test_production_refuses_to_start_without_a_secret_key_and_says_which(clean_env):
    clean_env.setenv("RAPPORT_BASE_URL", "https://rapport.example")
    with pytest.raises(ConfigurationError, match=r"^RAPPORT_SECRET_KEY not set"):
        create_app()


def test_production_names_every_missing_variable(clean_env):
    with pytest.raises(ConfigurationError, match="RAPPORT_SECRET_KEY, RAPPORT_BASE_URL not set"):
        create_app()


def test_short_secret_key_is_refused(clean_env):
    clean_env.setenv("RAPPORT_BASE_URL", "https://rapport.example")
    clean_env.setenv("RAPPORT_SECRET_KEY", "short")
    with pytest.raises(ConfigurationError, match="too short"):
        create_app()


@pytest.mark.parametrize("base_url", ["rapport.example", "ftp://rapport.example",
                                      "https://", "https://rapport.example/?x=1"])
def test_a_base_url_links_could_not_be_built_on_is_refused(production_env, base_url):
    production_env.setenv("RAPPORT_BASE_URL", base_url)
    with pytest.raises(ConfigurationError, match="^RAPPORT_BASE_URL is .*with its scheme"):
        create_app()


def test_a_port_that_is_not_a_number_is_refused_plainly(production_env):
    production_env.setenv("RAPPORT_SMTP_PORT", "abc")
    with pytest.raises(ConfigurationError, match="^RAPPORT_SMTP_PORT is 'abc'"):
        create_app()


def test_the_wsgi_entry_point_says_what_is_wrong_without_a_traceback(production_env):
    import os
    import subprocess
    import sys

    production_env.setenv("RAPPORT_BASE_URL", "rapport.example")
    root = ROOT
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=root, env=dict(os.environ),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("Rapport cannot start: RAPPORT_BASE_URL is 'rapport.example'")
    assert "Traceback" not in result.stderr


def test_environment_overrides_instance_file_which_overrides_defaults(clean_env, tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "rapport.cfg").write_text(
        'SECRET_KEY = "from-the-instance-folder-0123456789"\n'
        'BASE_URL = "https://from-file.example/"\n'
        "SMTP_PORT = 2525\n")
    clean_env.setenv("RAPPORT_BASE_URL", "https://from-env.example")
    clean_env.setenv("RAPPORT_SMTP_STARTTLS", "true")
    app = create_app()
    assert app.config["SECRET_KEY"] == "from-the-instance-folder-0123456789"
    assert app.config["BASE_URL"] == "https://from-env.example"
    assert app.config["SMTP_PORT"] == 2525
    assert app.config["SMTP_STARTTLS"] is True
    assert app.config["SMTP_HOST"] == "localhost"  # the default
    assert app.config["DATABASE_URL"] == f"sqlite:///{instance / 'rapport.db'}"


def test_every_documented_variable_is_read(clean_env):
    values = {
        "DATABASE_URL": "sqlite:////tmp/rapport-config-test.db",
        "BASE_URL": "https://rapport.example",
        "SECRET_KEY": "0123456789abcdef0123456789",
        "SMTP_HOST": "smtp.example", "SMTP_PORT": "587", "SMTP_USERNAME": "mailer",
        "SMTP_PASSWORD": "pw", "SMTP_STARTTLS": "true", "MAIL_FROM": "Clinic <c@example.com>",
    }
    for name, value in values.items():
        clean_env.setenv(f"RAPPORT_{name}", value)
    config = create_app({"AUTO_MIGRATE": False}).config
    assert (config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_USERNAME"],
            config["SMTP_PASSWORD"], config["SMTP_STARTTLS"], config["MAIL_FROM"]) == (
        "smtp.example", 587, "mailer", "pw", True, "Clinic <c@example.com>")
    assert config["DATABASE_URL"] == values["DATABASE_URL"]


def test_development_generates_and_keeps_a_secret_key(clean_env, tmp_path):
    clean_env.setenv("RAPPORT_ENV", "development")
    first = create_app().config["SECRET_KEY"]
    second = create_app().config["SECRET_KEY"]
    assert first == second and len(first) >= 32
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o077 == 0


def test_embedded_redis_starts_when_no_url_is_configured(clean_env, tmp_path):
    from plugin.tasks.embedded_redis import EmbeddedRedis

    clean_env.delenv("RAPPORT_REDIS_URL")
    clean_env.setenv("RAPPORT_ENV", "development")
    app = create_app()
    try:
        assert app.config["REDIS_URL"].startswith("unix://")
        assert app.extensions["rapport.redis"].ping()
        assert create_app().config["REDIS_URL"] == app.config["REDIS_URL"]  # shared
    finally:
        EmbeddedRedis(tmp_path / "instance" / "redis").stop()


def test_text_settings_stay_text_exactly_as_given(clean_env):
    """JSON would make an all-digit key a number and "true" a boolean: not for text."""
    values = {
        "BASE_URL": "https://rapport.example",
        "SECRET_KEY": "12345678901234567890", "SMTP_USERNAME": "1e3",
        "SMTP_PASSWORD": "true", "MAIL_FROM": "0123", "SMTP_HOST": "null",
        "SQUARE_ACCESS_TOKEN": "[1]",
    }
    for name, value in values.items():
        clean_env.setenv(f"RAPPORT_{name}", value)
    config = create_app({"AUTO_MIGRATE": False}).config
    assert {name: config[name] for name in values} == values


def test_numbers_booleans_and_lists_are_still_read_as_json(clean_env):
    clean_env.setenv("RAPPORT_BASE_URL", "https://rapport.example")
    clean_env.setenv("RAPPORT_SECRET_KEY", "0123456789abcdef0123456789")
    clean_env.setenv("RAPPORT_SMTP_PORT", "2525")
    clean_env.setenv("RAPPORT_SMTP_STARTTLS", "false")
    clean_env.setenv("RAPPORT_JOB_RETRY_INTERVALS", "[5, 50]")
    clean_env.setenv("RAPPORT_SQUARE_WEBHOOK_SIGNATURE_KEY", '["old-key", "new-key"]')
    config = create_app({"AUTO_MIGRATE": False}).config
    assert (config["SMTP_PORT"], config["SMTP_STARTTLS"], config["JOB_RETRY_INTERVALS"],
            config["SQUARE_WEBHOOK_SIGNATURE_KEY"]) == (2525, False, [5, 50],
                                                       ["old-key", "new-key"])


def test_an_all_digit_secret_key_seals_credentials(clean_env):
    from plugin.store import sealing as crypto

    clean_env.setenv("RAPPORT_BASE_URL", "https://rapport.example")
    clean_env.setenv("RAPPORT_SECRET_KEY", "98765432109876543210")
    with create_app({"AUTO_MIGRATE": False}).app_context():
        assert crypto.unseal(crypto.seal({"token": "t"})) == {"token": "t"}


@pytest.mark.parametrize("base_url, setting, secure", [
    ("https://rapport.example", None, True),
    ("http://127.0.0.1:5000", None, False),
    ("https://rapport.example", "false", False),  # the admin's choice stands
    ("http://127.0.0.1:5000", "true", True),
])
def test_session_cookie_is_secure_with_an_https_base_url_unless_set(
        clean_env, base_url, setting, secure):
    clean_env.setenv("RAPPORT_BASE_URL", base_url)
    clean_env.setenv("RAPPORT_SECRET_KEY", "0123456789abcdef0123456789")
    if setting is not None:
        clean_env.setenv("RAPPORT_SESSION_COOKIE_SECURE", setting)
    assert create_app({"AUTO_MIGRATE": False}).config["SESSION_COOKIE_SECURE"] is secure


def test_session_cookie_security_can_be_set_in_the_instance_file(clean_env, tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "rapport.cfg").write_text("SESSION_COOKIE_SECURE = False\n")
    clean_env.setenv("RAPPORT_BASE_URL", "https://rapport.example")
    clean_env.setenv("RAPPORT_SECRET_KEY", "0123456789abcdef0123456789")
    assert create_app({"AUTO_MIGRATE": False}).config["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize(("given", "meant"), [
    ("False", False), ("FALSE", False), ("off", False), ("No", False), ("0", False),
    ("True", True), ("on", True), ("YES", True), ("1", True)])
def test_on_off_settings_are_read_as_booleans_whatever_their_case(production_env, given, meant):
    """RAPPORT_SMTP_STARTTLS=False must not leave the string "False", which is truthy
    (STARTTLS tried on a server without it: no check-in ever sent)."""
    production_env.setenv("RAPPORT_SMTP_STARTTLS", given)
    production_env.setenv("RAPPORT_SESSION_COOKIE_SECURE", given)
    app = create_app()
    assert app.config["SMTP_STARTTLS"] is meant
    assert app.config["SESSION_COOKIE_SECURE"] is meant


def test_an_on_off_setting_that_is_neither_is_refused_plainly(production_env):
    production_env.setenv("RAPPORT_SMTP_STARTTLS", "maybe")
    with pytest.raises(ConfigurationError, match="^RAPPORT_SMTP_STARTTLS is 'maybe': use true"):
        create_app()
