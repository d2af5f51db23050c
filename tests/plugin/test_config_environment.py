"""RAPPORT_ENV is production or development, in any case; anything else refuses to start
(it used to start a production server in development mode: generated key, no Secure
cookie, no HSTS)."""

from __future__ import annotations

import pytest

from plugin import create_app
from plugin.config import ConfigurationError


def settings(tmp_path, redis_url, env):
    return {"ENV": env, "SECRET_KEY": "k" * 32, "BASE_URL": "https://rapport.example",
            "INSTANCE_PATH": str(tmp_path), "REDIS_URL": redis_url}


@pytest.mark.parametrize("env", ["prod", "Prod", "staging", "", "production "[:-2], "live"])
def test_anything_but_the_two_names_refuses_to_start(tmp_path, redis_url, env):
    with pytest.raises(ConfigurationError, match="RAPPORT_ENV"):
        create_app(settings(tmp_path, redis_url, env))


@pytest.mark.parametrize(("env", "meant"), [("Production", "production"),
                                            (" PRODUCTION ", "production"),
                                            ("Development", "development")])
def test_the_two_names_in_any_case(tmp_path, redis_url, env, meant):
    app = create_app(settings(tmp_path, redis_url, env))
    assert app.config["ENV"] == meant


def test_production_in_capitals_is_production(tmp_path, redis_url):
    with pytest.raises(ConfigurationError, match="RAPPORT_SECRET_KEY"):
        create_app({**settings(tmp_path, redis_url, "Production"), "SECRET_KEY": None})
    app = create_app(settings(tmp_path, redis_url, "Production"))
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.test_client().get("/healthz").headers["Strict-Transport-Security"]
