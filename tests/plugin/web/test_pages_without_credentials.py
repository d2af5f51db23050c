"""What anyone can ask without credentials: /healthz says ok or not and nothing more,
no such request takes the database's write lock, and each address is rate-limited."""

from __future__ import annotations

import sqlite3
import time

from tests.support.generic import event_body, webhook_path
from tests.support.generic import sign_generic as signed


def test_healthz_is_minimal_for_anyone_and_detailed_with_the_token(app_factory):
    app = app_factory(HEALTH_TOKEN="operator-token")
    client = app.test_client()
    public = client.get("/healthz")
    assert (public.status_code, public.get_json()) == (200, {"ok": True})
    assert client.get("/healthz?token=wrong").get_json() == {"ok": True}
    detailed = client.get("/healthz", headers={"X-Health-Token": "operator-token"}).get_json()
    assert detailed["database"] == "ok" and "queued_jobs" in detailed
    assert client.get("/healthz?token=operator-token").get_json()["redis"] == "ok"


def test_without_a_token_setting_no_one_gets_the_detail(web):
    assert web.get("/healthz", headers={"X-Health-Token": ""}).get_json() == {"ok": True}


def test_requests_without_credentials_do_not_wait_for_the_write_lock(app, web, generic_clinic):
    """Another process holds SQLite's write lock (a long write): a random survey link,
    /healthz and a webhook with a bad signature are still answered at once."""
    blocker = sqlite3.connect(app.config["DATABASE_URL"].removeprefix("sqlite:///"),
                              isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        assert web.get("/s/not-a-real-token").status_code == 404
        assert web.get("/s/not-a-real-token/unsubscribe").status_code == 404
        assert web.get("/healthz").status_code == 200
        body = event_body()
        forged = {**signed(body, generic_clinic), "webhook-signature": "v1,Zm9yZ2Vk"}
        assert web.post(webhook_path(generic_clinic), data=body, headers=forged).status_code == 401
        assert web.post("/webhooks/generic/no-such-clinic", data=body,
                           headers=forged).status_code == 404
        # SQLite's busy timeout is 30 s: anything near it means a request waited.
        assert time.monotonic() - started < 5
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_pages_are_rate_limited_per_address(app_factory):
    app = app_factory(RATE_LIMIT_PAGES=5)
    client = app.test_client()
    codes = [client.get("/s/some-token").status_code for _ in range(6)]
    assert codes == [404] * 5 + [429]
    assert client.get("/healthz").status_code == 429
    other = client.get("/healthz", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert other.status_code == 200


def test_behind_a_proxy_the_client_address_and_scheme_come_from_it(app_factory):
    app = app_factory(RATE_LIMIT_PAGES=2, PROXY_COUNT=1)
    client = app.test_client()

    def get(forwarded_for):
        return client.get("/healthz", headers={"X-Forwarded-For": forwarded_for,
                                                "X-Forwarded-Proto": "https"})
    # Each client behind the proxy has its own count, not the proxy's address.
    assert [get("198.51.100.1").status_code for _ in range(3)] == [200, 200, 429]
    assert get("198.51.100.2").status_code == 200


def test_without_a_proxy_setting_forwarded_headers_are_ignored(app_factory):
    app = app_factory(RATE_LIMIT_PAGES=2)
    client = app.test_client()
    codes = [client.get("/healthz", headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code
             for n in range(3)]
    assert codes == [200, 200, 429]  # one address: the request's own
