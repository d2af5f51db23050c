"""Where Rapport's log lines go when nothing else decided.

Under gunicorn or ``flask run`` no logging is configured, and Python would print only
warnings. Rapport's own lines (``webhooks.ignored-event``, ``webhooks.duplicate``, …)
are part of what an admin reads, so when the process has no handler of its own they
go to standard error at ``RAPPORT_LOG_LEVEL`` (INFO by default). A process that set up
logging itself (the CLI, a test run, a deployment's logging config) is left alone.

``RAPPORT_LOG_FORMAT=json`` writes each line as one JSON object instead (``time``,
``level``, ``logger``, ``message``, ``process``, the context below when given, and
``exception`` with its traceback), for a log collector; it applies to the handlers the
process already has too, and to RQ's worker lines.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

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


class JsonLines(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for name in CONTEXT:
            if getattr(record, name, None) is not None:
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


# RQ's loggers, which get a handler of their own unless they have one.
RQ_LOGGERS = ("rq.worker", "rq.scheduler", "rq.cron", "rq.worker_pool")


def _json_everywhere() -> None:
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonLines())
    for name in RQ_LOGGERS:
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(logging.StreamHandler())
        for handler in logger.handlers:
            handler.setFormatter(JsonLines())


def init_app(app: Flask) -> None:
    level = str(app.config.get("LOG_LEVEL") or "INFO").upper()
    if logging.getLevelName(level) == f"Level {level}":
        level = "INFO"
    json_lines = str(app.config.get("LOG_FORMAT") or "text").lower() == "json"
    if logging.getLogger().handlers:
        if json_lines:
            _json_everywhere()
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if json_lines else WithContext(FORMAT))
    # On the root logger, which stays at WARNING: other libraries' lines keep their
    # usual level, and Rapport's own loggers let their INFO lines through.
    logging.getLogger().addHandler(handler)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if json_lines:
        _json_everywhere()
