"""The rapport command assembled (``plugin/cli/__init__.py``): its questionnaires commands
read the clinic's instrument folder from rapport.cfg or the environment."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from plugin.cli import main
from tests.support.rapport import ROOT


@pytest.fixture
def licensed_folder(tmp_path):
    """A clinic's folder holding a filled-in copy of the WAI-SR template."""
    import re

    template = ROOT / "questionnaires" / "licensed"
    text = (template / "wai-sr.template.yaml").read_text(encoding="utf-8")
    folder = tmp_path / "licensed"
    folder.mkdir()
    (folder / "wai-sr.yaml").write_text(re.sub(r"<<[^<>]*>>", "wording", text), encoding="utf-8")
    return folder


def test_questionnaires_commands_read_the_folder_from_rapport_cfg(
        monkeypatch, tmp_path, licensed_folder):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "rapport.cfg").write_text(f"QUESTIONNAIRES_DIR = {str(licensed_folder)!r}\n")
    monkeypatch.setenv("RAPPORT_INSTANCE_PATH", str(instance))
    monkeypatch.delenv("RAPPORT_QUESTIONNAIRES_DIR", raising=False)
    runner = CliRunner()

    listed = runner.invoke(main, ["questionnaires", "list"])
    checked = runner.invoke(main, ["questionnaires", "check"])

    assert listed.exit_code == 0, listed.output
    assert [line.split("  ")[0] for line in listed.stdout.splitlines()] == [
        "rapport-checkin", "rapport-pulse", "wai-sr"]
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.splitlines()[-1] == f"OK {licensed_folder / 'wai-sr.yaml'} (wai-sr v1)"


def test_questionnaires_commands_let_the_environment_override_rapport_cfg(
        monkeypatch, tmp_path, licensed_folder):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "rapport.cfg").write_text(f"QUESTIONNAIRES_DIR = {str(tmp_path / 'old')!r}\n")
    monkeypatch.setenv("RAPPORT_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("RAPPORT_QUESTIONNAIRES_DIR", str(licensed_folder))

    result = CliRunner().invoke(main, ["questionnaires", "score", "wai-sr", "--answers",
                                       json.dumps({f"wai-{n}": 3 for n in range(1, 13)})])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == "Overall: raw 36 (range 12–60), 50.0/100"
