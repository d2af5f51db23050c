"""A clinic's health as an admin reads it: `rapport clinic list`, `rapport clinic
retry-write-backs`."""

from __future__ import annotations

import json


def test_clinic_list_shows_health(cli):
    assert "No clinics yet" in cli("clinic", "list").output
    cli("clinic", "add", "--name", "Harbour", "--platform", "generic",
        "--callback-url", "https://booking.example/hooks")
    listed = cli("clinic", "list").output
    assert "Harbour" in listed and "OK" in listed and "last event: none yet" in listed
    rows = json.loads(cli("clinic", "list", "--json").output)
    assert rows[0]["status"] == "active"


def test_retry_write_backs_says_when_there_is_nothing_to_retry(cli):
    created = json.loads(cli("clinic", "add", "--name", "Harbour", "--platform", "generic",
                             "--callback-url", "https://booking.example/hooks",
                             "--json").output)
    result = cli("clinic", "retry-write-backs", created["key"])
    assert result.exit_code == 0 and "No failed write-backs." in result.output


def test_clinic_list_names_instrument_files_it_skipped(cli, monkeypatch, tmp_path):
    folder = tmp_path / "licensed"
    folder.mkdir()
    (folder / "broken.yaml").write_text("id: broken\ntitle: {en: Broken\n", encoding="utf-8")
    monkeypatch.setenv("RAPPORT_QUESTIONNAIRES_DIR", str(folder))
    listed = cli("clinic", "list", "--json")
    assert listed.exit_code == 0
    assert json.loads(listed.stdout) == []
    assert "Licensed instrument files skipped" in listed.stderr
    assert f"{folder / 'broken.yaml'}: line" in listed.stderr
