"""Where Rapport's log lines go when nothing else decided.

Under gunicorn or ``flask run`` no logging is configured, and Python would print only
warnings. Rapport's own lines (``webhooks.ignored-event``, ``webhooks.duplicate``, …)
are part of what an admin reads, so when the process has no handler of its own they
go to standard error at ``RAPPORT_LOG_LEVEL`` (INFO by default). A process that set up
logging itself (the CLI, a test run, a deployment's logging config) is left alone.
"""

from __future__ import annotations

import logging

from flask import Flask

OWN_LOGGERS = ("plugin", "handlers", "questionnaires")
FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


# Context a log call gives in ``extra``, shown after the message so that a line names
# the clinic it is about.
CONTEXT = ("platform", "clinic", "clinic_id", "job_id")


class WithContext(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        given = [f"{name}={getattr(record, name)}" for name in CONTEXT
                 if getattr(record, name, None) is not None]
        return f"{line} [{' '.join(given)}]" if given else line


def init_app(app: Flask) -> None:
    level = str(app.config.get("LOG_LEVEL") or "INFO").upper()
    if logging.getLevelName(level) == f"Level {level}":
        level = "INFO"
    if logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(WithContext(FORMAT))
    # On the root logger, which stays at WARNING: other libraries' lines keep their
    # usual level, and Rapport's own loggers let their INFO lines through.
    logging.getLogger().addHandler(handler)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
