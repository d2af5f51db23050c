"""Square's webhook signature, checked against the official SDK in both directions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading

import pytest
from square.utils.webhooks_helper import verify_signature as sdk_verify
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from handlers import square
from handlers.base import InboundRequest, SignatureError

URL = "https://rapport.example/webhooks/square/clinic-7"
KEY = "k1-Square-signature-key"
# Non-ASCII on purpose: the URL and the body are signed as UTF-8 bytes.
BODY = '{"type":"booking.updated","note":"Douleur à l’épaule ▂▅▇"}'.encode()


def square_header(body: bytes, key: str, url: str) -> str:
    """The header as Square's documentation describes it, computed independently."""
    digest = hmac.new(key.encode(), url.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def request(body: bytes, header: str | None) -> InboundRequest:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["X-Square-HmacSha256-Signature"] = header
    return InboundRequest(body=body, headers=headers)


SECRETS = {"signature_keys": [KEY], "notification_url": URL}


def test_our_signature_verifies_with_the_official_sdk():
    header = square.sign(BODY, signature_key=KEY, notification_url=URL)[square.SIGNATURE_HEADER]
    assert sdk_verify(
        request_body=BODY.decode(), signature_header=header, signature_key=KEY,
        notification_url=URL,
    )  # fmt: skip


def test_a_header_the_sdk_accepts_verifies_with_ours():
    header = square_header(BODY, KEY, URL)
    assert sdk_verify(
        request_body=BODY.decode(), signature_header=header, signature_key=KEY,
        notification_url=URL,
    )  # fmt: skip
    square.verify(request(BODY, header), SECRETS)


def test_sign_and_verify_round_trip():
    headers = square.sign(BODY, signature_key=KEY, notification_url=URL)
    square.verify(InboundRequest(body=BODY, headers=headers), SECRETS)


@pytest.mark.parametrize(
    "body, header",
    [
        pytest.param(BODY, square_header(BODY, "another-key", URL), id="wrong key"),
        pytest.param(BODY, square_header(BODY, KEY, URL + "/"), id="trailing slash"),
        pytest.param(BODY, square_header(BODY, KEY, URL + "?x=1"), id="query string"),
        pytest.param(BODY, square_header(BODY, KEY, URL.replace("https", "http")), id="scheme"),
        pytest.param(BODY + b" ", square_header(BODY, KEY, URL), id="body changed"),
        pytest.param(BODY, "", id="empty header"),
        pytest.param(BODY, None, id="missing header"),
        pytest.param(BODY, "not base64 at all", id="garbage header"),
    ],
)
def test_anything_else_is_refused(body, header):
    with pytest.raises(SignatureError):
        square.verify(request(body, header), SECRETS)
    if header:
        assert not sdk_verify(
            request_body=body.decode(), signature_header=header, signature_key=KEY,
            notification_url=URL,
        )  # fmt: skip


@pytest.mark.parametrize(
    "secrets",
    [
        {"signature_keys": [], "notification_url": URL},
        {"signature_keys": [""], "notification_url": URL},
        {"notification_url": URL},
        {"signature_keys": [KEY]},
        {"signature_keys": [KEY], "notification_url": ""},
        {},
    ],
)
def test_fails_closed_without_a_key_or_url(secrets):
    with pytest.raises(SignatureError):
        square.verify(request(BODY, square_header(BODY, KEY, URL)), secrets)


def test_during_rotation_old_and_new_keys_both_verify():
    rotating = {"signature_keys": ["new-key", KEY], "notification_url": URL}
    square.verify(request(BODY, square_header(BODY, KEY, URL)), rotating)
    square.verify(request(BODY, square_header(BODY, "new-key", URL)), rotating)
    with pytest.raises(SignatureError):
        square.verify(request(BODY, square_header(BODY, "retired-key", URL)), rotating)


def test_a_signature_over_the_address_it_arrived_on_is_refused():
    """Behind a proxy the request arrives on another URL; only the registered one counts."""
    behind_proxy = InboundRequest(
        body=BODY,
        headers={square.SIGNATURE_HEADER: square_header(BODY, KEY, "http://10.0.0.5/hook")},
    )
    with pytest.raises(SignatureError):
        square.verify(behind_proxy, SECRETS)


def test_sandbox_deliveries_verify_on_a_real_receiver(square_sandbox, square_fixture):
    """The sandbox signs independently of Rapport; a real HTTP receiver checks it."""
    received: list[InboundRequest] = []

    def receiver(environ, start_response):
        incoming = Request(environ)
        inbound = InboundRequest(body=incoming.get_data(), headers=dict(incoming.headers))
        try:
            square.verify(inbound, SECRETS)
        except SignatureError:
            return Response(status=401)(environ, start_response)
        received.append(inbound)
        return Response(status=202)(environ, start_response)

    class Quiet(WSGIRequestHandler):
        def log(self, *args):
            pass

    server = make_server("127.0.0.1", 0, receiver, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        local = f"http://127.0.0.1:{server.server_port}/webhooks/square/clinic-7"
        event = square_fixture("booking.created__accepted")
        ok = square_sandbox.deliver(local, event, signature_key=KEY, notification_url=URL)
        forged = square_sandbox.deliver(local, event, signature_key="guess", notification_url=URL)
    finally:
        server.shutdown()
        server.server_close()
    assert (ok.status_code, forged.status_code) == (202, 401)
    assert received[0].body == event
    assert square.delivery_id(received[0]) == "76193e8a-db85-53c6-b538-1837519cbc12"
