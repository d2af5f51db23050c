"""Rapport under test: its configuration against the test servers, and the environment
that configures a Rapport subprocess the same way."""

from __future__ import annotations

import json
import os
from pathlib import Path

from jinja2.bccache import Bucket, BytecodeCache

ROOT = Path(__file__).resolve().parents[2]
"""The project's folder (what a subprocess needs on its PYTHONPATH)."""


def make_config(tmp_path: Path, redis_url: str, smtp_port: int, **extra) -> dict:
    return {
        "ENV": "development",  # loopback callbacks (ALLOW_PRIVATE_CALLBACKS)
        "SECRET_KEY": "test-secret-key-0123456789abcdef",
        "BASE_URL": "http://rapport.test",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'rapport.db'}",
        "REDIS_URL": redis_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": smtp_port,
        "MAIL_FROM": "Harbour Massage <checkin@harbour.example>",
        # Retries are scheduled a second or so later; tests bring them due
        # (tests.support.clock) rather than wait.
        "JOB_RETRY_INTERVALS": [1, 1, 1],
        "WRITE_BACK_BACKOFF_SECONDS": 1,
        **extra,
    }


def subprocess_env(app, **extra) -> dict[str, str]:
    """The environment that configures a Rapport subprocess like ``app``."""
    names = ("ENV", "SECRET_KEY", "BASE_URL", "DATABASE_URL", "REDIS_URL", "SMTP_HOST",
             "SMTP_PORT", "MAIL_FROM", "JOB_RETRY_INTERVALS", "WRITE_BACK_BACKOFF_SECONDS")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    for name in names:
        value = app.config[name]
        env[f"RAPPORT_{name}"] = value if isinstance(value, str) else json.dumps(value)
    env["RAPPORT_INSTANCE_PATH"] = app.instance_path
    env["PYTHONPATH"] = str(ROOT)
    env.update({f"RAPPORT_{k}": str(v) for k, v in extra.items()})
    return env


def plain_env() -> dict[str, str]:
    """This process's environment without any Rapport setting (as on a new machine), with
    the project importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


class SharedTemplates(BytecodeCache):
    """Jinja's compiled templates kept in memory for the whole session: every test builds
    an app of its own, and compiling the same templates again for each is most of what
    rendering its pages costs. Jinja checks each template's source against its checksum,
    so a changed template is compiled afresh."""

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


TEMPLATES = SharedTemplates()
