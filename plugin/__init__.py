"""Rapport: therapeutic-alliance check-ins written back into the clinic's booking tool.

``create_app`` builds the Flask application: configuration (defaults, instance folder,
``RAPPORT_*`` environment), the database, the queue, the blueprints for the survey
pages and the platform install flows, and the webhook receiver in front of them.
"""

from __future__ import annotations

from flask import Flask, jsonify

from plugin import config, i18n, inbox, logs, queue, security, storage, webhooks


def create_app(overrides: dict | None = None) -> Flask:
    app = config.bare_app(overrides)
    config.load_config(app, overrides)
    logs.init_app(app)

    storage.init_app(app)
    queue.init_app(app)
    inbox.init_app(app)
    i18n.init_app(app)
    security.init_app(app)

    from plugin.connect import bp as connect_bp
    from plugin.survey import bp as survey_bp

    app.register_blueprint(survey_bp)
    app.register_blueprint(connect_bp)
    webhooks.init_app(app)

    @app.get("/healthz")
    def healthz():
        from plugin.health import check

        report = check()
        return jsonify(report), 200 if report["ok"] else 503

    return app
