"""The production front door: Rapport behind an asynchronous HTTP server, so that a slow
client never holds a thread (docs/security.md, "Slow clients").

gunicorn's threaded worker gives each connection a thread from the moment its first
bytes arrive until its request is read whole: 16 clients sending a request a byte at a
time stopped a 2 × 8-thread installation, ``/healthz`` included. Here the connection is
read by uvicorn's event loop (``gunicorn -k uvicorn_worker.UvicornWorker asgi:app``),
which costs a slow client no thread; :class:`BufferedBody` reads the whole body there
too, refusing one over ``MAX_CONTENT_LENGTH`` with 413 as soon as that shows; only then
does the request go to a thread of the pool that runs Rapport's WSGI application
(``a2wsgi``), which so never waits on a client.
"""

from __future__ import annotations

import json

from a2wsgi import WSGIMiddleware
from flask import Flask

THREADS = 16  # per process: threads running requests that are already read whole


class BufferedBody:
    """ASGI middleware: the request's body, read whole on the event loop (at most
    ``limit`` bytes), before ``app`` sees the request."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._too_large(send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return await self._too_large(send)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # the client's disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    async def _too_large(self, send) -> None:
        answer = json.dumps({"error": f"the body is larger than {self.limit // 1024} KB"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": answer.encode()})


def asgi(app: Flask):
    """Rapport's application (the webhook receiver in front of Flask) as ASGI."""
    return BufferedBody(WSGIMiddleware(app, workers=THREADS),
                        limit=app.config["MAX_CONTENT_LENGTH"])
