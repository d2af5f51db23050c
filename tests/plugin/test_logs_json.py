"""``RAPPORT_LOG_FORMAT=json``: one JSON object per line (plugin/logs.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.rapport import subprocess_env

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import logging
from plugin import create_app
create_app()
log = logging.getLogger("plugin.pipeline.sending")
log.info("check-in.sent: check-in %s", 12, extra={"clinic": "harbour", "platform": "generic"})
try:
    raise ValueError("the mail server answered 550")
except ValueError:
    log.exception("check-in.send-failed: check-in %s", 13)
"""


def run(app, **settings) -> list[str]:
    result = subprocess.run([sys.executable, "-c", SCRIPT],
                            env=subprocess_env(app, AUTO_MIGRATE="false", **settings),
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr.strip().splitlines()


def test_json_lines(app):
    lines = run(app, LOG_FORMAT="json")
    sent, failed = (json.loads(line) for line in lines if line.startswith("{"))
    assert sent["message"] == "check-in.sent: check-in 12"
    assert (sent["level"], sent["logger"], sent["clinic"], sent["platform"]) == (
        "INFO", "plugin.pipeline.sending", "harbour", "generic")
    assert sent["time"].endswith("+00:00") and isinstance(sent["process"], int)
    assert failed["level"] == "ERROR"
    assert "ValueError: the mail server answered 550" in failed["exception"]
    assert len([line for line in lines if line.strip()]) == 2  # the traceback is inside


def test_text_lines_by_default(app):
    (line, *traceback) = run(app)
    assert "INFO" in line and "check-in.sent: check-in 12 [platform=generic clinic=harbour]" \
        in line
    assert not line.startswith("{") and traceback
