"""``rapport demo --once --platform NAME`` runs the loop against each platform's local
stand-in (tests/sandboxes) and exits 0, printing every step.

Marked slow: each run takes 8–13 s on the project's two-core machine (about as long as the
generic demo's own test), since a private Redis is started, the database migrated, and
the stand-in, Rapport, the mail catcher and a worker all run for real, in a process of
their own."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from plugin.cli import main
from tests.sandboxes import DEMOS

ROOT = Path(__file__).resolve().parents[3]
STEPS = ("== 1. Queue", "== 2. Services", "== 3. Clinic connected", "== 4. Sam's visit",
         "== 5. The visit is over", "== 6. The worker sent the check-in email",
         "== 7. Sam answers on their phone", "== 8. Sam's notes in",
         "== 9. Sam books again", "== 10. What Rapport asked of", "Demo complete.")


def demo(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RAPPORT_") or k == "RAPPORT_SHARED_DIR"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "plugin", "demo", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180)


@pytest.mark.slow
@pytest.mark.parametrize("platform", sorted(DEMOS))
def test_the_demo_runs_the_loop_against_the_platforms_stand_in(platform):
    module, _, name = DEMOS[platform].partition(":")
    why = getattr(importlib.import_module(module), name).unavailable()
    if why:
        print(f"\nSkipping: {why}")
        pytest.skip(why)
    result = demo("--once", "--platform", platform)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    positions = [out.index(step) for step in STEPS]
    assert positions == sorted(positions)
    notes = out[out.index("== 8."):out.index("== 9.")]
    # The therapist's own text first, kept, then Rapport's one block.
    assert "Prefers firm pressure on the back." in notes
    assert notes.index("Prefers firm pressure") < notes.index("[Rapport]")
    assert notes.count("[Rapport]") == 1 and "[/Rapport]" in notes
    booked_again = out[out.index("== 9."):out.index("== 10.")]
    assert booked_again.index("Room 2, please.") < booked_again.index("[Rapport]")
    assert "To: sam@example.com" in out and "POST (answers, CSRF token) → 200 Thank you" in out
    assert "Traceback" not in result.stderr


def test_a_platform_without_a_stand_in_demo_is_said_plainly(monkeypatch):
    monkeypatch.delenv("RAPPORT_REDIS_URL", raising=False)
    result = CliRunner().invoke(main, ["demo", "--once", "--platform", "zenoti"])
    assert result.exit_code == 1
    assert "no stand-in demo for 'zenoti'; these have one: acuity, cliniko, mindbody, square" \
        in result.output
