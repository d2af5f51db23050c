"""Square's application subscription and sign-in, as the tests reach them."""

from __future__ import annotations

import handlers
from plugin.clinics import oauth, subscriptions

SQUARE = handlers.platform("square")


def application_webhook():
    return subscriptions.application_webhook(SQUARE)


def ensure_application_webhook():
    return subscriptions.ensure_application_webhook(SQUARE)


def _serializer():
    return oauth._serializer(SQUARE)
