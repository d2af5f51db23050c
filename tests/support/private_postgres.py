"""A PostgreSQL cluster of its own, in a temporary folder, that can be restarted: what
the fault matrix needs to see Rapport through a database restart.

Uses the ``initdb`` and ``pg_ctl`` of an installed PostgreSQL (on PATH, or Debian's
/usr/lib/postgresql/<version>/bin). PostgreSQL refuses to run as root: as root the
cluster belongs to the ``postgres`` user (commands run through ``runuser``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from tests.support.servers import free_port


def postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return versions[-1].parent if versions else None


def unavailable() -> str | None:
    """Why no private cluster can be started here, or None."""
    if postgres_bin() is None:
        return "no PostgreSQL server installed (initdb and pg_ctl not found)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to own the cluster"
        if shutil.which("runuser") is None:
            return "running as root without runuser"
    return None


class PrivatePostgres:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.data = self.folder / "data"
        self.port = free_port()
        self.bin = postgres_bin()
        self.as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run([*prefix, str(self.bin / command[0]), *command[1:]], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            shutil.chown(self.folder, "postgres")
            self.folder.chmod(0o700)
            self.folder.parent.chmod(0o755)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync")
        self._pg_ctl("start")
        return self.url

    def _pg_ctl(self, action: str) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
                   "-c fsync=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.folder / "postgres.log"), "-w", action, *(
                      ["-m", "fast"] if action in ("restart", "stop") else []))
        if action != "stop":
            self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres",
                                connect_timeout=2).close()
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not start; see {self.folder / 'postgres.log'}")

    def restart(self) -> None:
        """A fast restart: every connection is cut, the server is gone for a moment."""
        self._pg_ctl("restart")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg_ctl("stop")
