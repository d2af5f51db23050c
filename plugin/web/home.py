"""``/``: what this service is, for a client who opens Rapport's address; and a plain page,
in the reader's language, for any address Rapport does not have (never the framework's
bare 404)."""

from __future__ import annotations

from flask import Blueprint, Flask, request

from plugin.i18n import pick_language, render_localized, supported_languages

bp = Blueprint("home", __name__)


def _language() -> str:
    return pick_language(request.accept_languages.best_match(supported_languages()))


@bp.get("/")
def page():
    return render_localized("home.html", _language())


def not_found(_error):
    return render_localized("not_found.html", _language()), 404


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_error_handler(404, not_found)
