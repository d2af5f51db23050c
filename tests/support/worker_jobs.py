"""Jobs for testing the worker itself: each notes the process that ran it in a file."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def note_process(path: str) -> int:
    with open(path, "a") as handle:
        handle.write(f"{os.getpid()}\n")
    return os.getpid()


def die_once(path: str) -> int:
    """Killed outright (as the OOM killer would) the first time; done the second."""
    marker = Path(path)
    if not marker.exists():
        marker.write_text(f"{os.getpid()}\n")
        os.kill(os.getpid(), signal.SIGKILL)
    return note_process(path)


def outlive_timeout(seconds: float) -> None:
    """Runs past a job timeout shorter than ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
