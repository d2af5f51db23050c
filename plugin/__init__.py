"""Rapport: therapeutic-alliance check-ins written back into the clinic's booking tool.

``create_app`` builds the Flask application: configuration (defaults, instance folder,
``RAPPORT_*`` environment), the database, the queue, the client's pages, the platform
connect pages, the clinic admins' console (``/admin``) and ``/healthz``, and the webhook
receiver in front of them. The layout of
the package follows one visit's journey: ``web`` (what arrives over HTTP), ``pipeline``
(what happens to it, stage by stage), ``clinics`` (who it is for, and the one seam to
their booking platform), ``tasks`` (running the jobs), ``store`` (where it is kept),
``cli`` and ``demo``. docs/architecture.md is the map.
"""

from __future__ import annotations

from flask import Flask

from plugin import config, i18n, logs, sentry
from plugin.store import database
from plugin.tasks import queue, runtime
from plugin.web import (
    admin,
    compression,
    connect,
    health,
    home,
    inbox,
    limits,
    receiver,
    security,
    survey,
)
from plugin.web import metrics as metrics_endpoint  # not plugin.metrics, the counters


def create_app(overrides: dict | None = None) -> Flask:
    app = config.bare_app(overrides)
    config.load_config(app, overrides)
    logs.init_app(app)
    sentry.init_app(app)

    database.init_app(app)
    queue.init_app(app)
    inbox.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    limits.init_app(app)
    compression.init_app(app)

    app.register_blueprint(survey.bp)
    app.register_blueprint(connect.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics_endpoint.bp)
    home.init_app(app)
    admin.init_app(app)
    receiver.init_app(app)
    security.trust_proxies(app)  # outermost: the receiver sees the client's address too
    return app


# A job run by a plain RQ worker builds its application with this (plugin.tasks.runtime).
runtime.use_factory(create_app)
