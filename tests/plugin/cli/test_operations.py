"""Running Rapport: `rapport worker --burst`."""

from __future__ import annotations


def test_worker_burst_drains_and_exits(cli):
    result = cli("worker", "--burst")
    assert result.exit_code == 0
