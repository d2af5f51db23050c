"""`rapport demo --once` runs the whole loop on its own servers and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_once_completes_the_loop_and_shows_the_note():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    result = subprocess.run([sys.executable, "-m", "plugin", "demo", "--once"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in ("1. Queue", "4. The booking system sends signed webhooks",
                 "appointment.completed  → 202 accepted",
                 "Subject: One minute about your visit to Harbour Massage",
                 "POST (answers, CSRF token) → 200 Thank you",
                 "received client.alliance_updated (signature verified)",
                 "[Rapport]", "[/Rapport]", "Prefers the window room", "Demo complete."):
        assert step in out, step
    assert out.index("[Rapport]") > out.index("8. Sam's profile")
