"""The baseline for bench/ingest.py: a WSGI endpoint that only verifies the Standard
Webhooks signature and pushes the body to Redis — the least any receiver must do."""

from __future__ import annotations

import os

import redis
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = os.environ["BARE_WEBHOOK_SECRET"]
QUEUE = os.environ.get("BARE_QUEUE", "bare:webhooks")
connection = redis.Redis.from_url(os.environ["BARE_REDIS_URL"])
webhook = Webhook(SECRET)


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    headers = {key[5:].replace("_", "-").lower(): value
               for key, value in environ.items() if key.startswith("HTTP_")}
    try:
        webhook.verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError):
        start_response("401 Unauthorized", [("Content-Length", "0")])
        return [b""]
    connection.lpush(QUEUE, body)
    start_response("202 Accepted", [("Content-Type", "application/json"),
                                    ("Content-Length", "2")])
    return [b"{}"]
