"""Rapport: therapeutic-alliance check-ins written back into the clinic's booking tool.

``create_app`` builds the Flask application: configuration (defaults, instance folder,
``RAPPORT_*`` environment), the database, the queue, and the blueprints for webhooks,
the survey pages and the platform install flows.
"""

from __future__ import annotations

from flask import Flask, jsonify

from plugin import config, i18n, inbox, logs, queue, security, storage


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
    from plugin.webhooks import bp as webhooks_bp

    app.register_blueprint(webhooks_bp)
    app.register_blueprint(survey_bp)
    app.register_blueprint(connect_bp)
    security.csrf.exempt(webhooks_bp)

    @app.get("/healthz")
    def healthz():
        from plugin.health import check

        report = check()
        return jsonify(report), 200 if report["ok"] else 503

    return app
