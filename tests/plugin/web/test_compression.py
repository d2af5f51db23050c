"""The survey page leaves gzip-compressed for browsers that accept it
(plugin/web/compression.py)."""

from __future__ import annotations

import gzip

from tests.support.survey import survey_path


def test_the_survey_page_is_compressed_when_the_browser_accepts_gzip(web, deliver_generic, drain,
                                                                      mailbox):
    assert deliver_generic("appointment.completed").status_code == 202
    drain()
    path = survey_path(mailbox.messages[0])
    plain = web.get(path)
    zipped = web.get(path, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert plain.status_code == zipped.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"] and "Accept-Encoding" in plain.headers[
        "Vary"]
    page = gzip.decompress(zipped.get_data())
    assert b'name="csrf_token"' in page and page.startswith(b"<!doctype html>")
    assert len(zipped.get_data()) < len(plain.get_data()) / 3
    assert int(zipped.headers["Content-Length"]) == len(zipped.get_data())
    # A browser that says it will not take gzip gets the page as it is.
    refused = web.get(path, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers


def test_small_answers_and_webhooks_are_left_alone(web, generic_clinic):
    unknown = web.get("/s/no-such-link-token", headers={"Accept-Encoding": "gzip"})
    assert unknown.status_code == 404
    healthz = web.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in healthz.headers  # a few bytes of JSON
    webhook = web.post(f"/webhooks/generic/{generic_clinic['key']}", data=b"{}",
                          headers={"Accept-Encoding": "gzip"})
    assert webhook.status_code == 401 and "Content-Encoding" not in webhook.headers
