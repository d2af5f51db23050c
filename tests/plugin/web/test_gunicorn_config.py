"""gunicorn's hooks (plugin/web/gunicorn_config.py), as the README's production line
loads them: after the application's package, whose /metrics endpoint must not hide the
counters module they use."""

from __future__ import annotations

import subprocess
import sys

from tests.support.rapport import ROOT, plain_env


def test_the_hooks_clear_an_earlier_runs_counts_as_gunicorn_starts(tmp_path):
    stale = tmp_path / "counter_999999999.db"
    stale.write_bytes(b"an earlier run's counts")
    loaded = subprocess.run(
        [sys.executable, "-c",
         "import plugin, plugin.metrics\n"
         "from plugin.web import gunicorn_config\n"
         "gunicorn_config.on_starting(None)"],
        env={**plain_env(), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, cwd=ROOT,
        capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert not stale.exists()
