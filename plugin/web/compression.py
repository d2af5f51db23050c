"""Pages sent gzip-compressed to browsers that accept it.

The survey is answered on phones, often on a mobile connection: its page is about 16 KB
of HTML and under 3 KB compressed. Flask's pages are compressed here as they leave
(``after_request``), with the standard library's gzip; the stylesheet (4 KB, cached by
the browser) and the webhook answers (a few bytes, served in front of Flask) are not.

Compressing a page that holds a secret (the link's token, the CSRF token) next to text
an attacker chooses could leak the secret through the compressed size (BREACH). Here
the only text a page echoes back (a client's answers and comment, shown again with an
error) comes from a POST to the link itself, which an attacker who lacks the token
cannot make.
"""

from __future__ import annotations

import gzip

from flask import Flask, Response, request

COMPRESSED_TYPES = frozenset({"text/html", "application/json"})
SMALLEST = 1024  # below this, gzip's own 20 bytes and the CPU are not worth it
LEVEL = 6


def init_app(app: Flask) -> None:
    app.after_request(compress)


def compress(response: Response) -> Response:
    if (response.direct_passthrough or response.is_streamed
            or response.mimetype not in COMPRESSED_TYPES
            or "Content-Encoding" in response.headers):
        return response
    response.vary.add("Accept-Encoding")
    if request.accept_encodings["gzip"] <= 0:
        return response
    body = response.get_data()
    if len(body) < SMALLEST:
        return response
    response.set_data(gzip.compress(body, compresslevel=LEVEL, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    return response
