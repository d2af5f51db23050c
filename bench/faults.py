"""The fault matrix, at full size: every scenario of tests/support/fault_scenarios.py on
real processes (gunicorn with the README's production line, ``--workers`` ×
``rapport worker`` restarted when they die, a private redis-server, aiosmtpd and a
callback receiver in this process), on SQLite and on a private PostgreSQL cluster.

Prints, per scenario: visits acknowledged, emails, duplicate emails, lost visits,
callbacks accepted, duplicate callbacks (a second note), same-id repeats (a callback
retried after its answer was lost: the receiver drops it by its webhook id), lost notes.
Exits 1 unless every scenario lost nothing and sent nothing twice.

    python bench/faults.py [--visits 100] [--strength 10] [--database sqlite postgresql]
                           [--scenario NAME ...] [--workers 2]

``--strength 10``: SMTP down for a minute, storms of 30 s, locks of 20 s, 40 kills.
The CI-sized run is tests/flows/test_fault_matrix.py (6 visits, strength 1).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from ingest import machine  # noqa: E402

from tests.support import private_postgres  # noqa: E402
from tests.support.fault_scenarios import SCENARIOS, run, table  # noqa: E402
from tests.support.fault_stack import Stack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=100)
    parser.add_argument("--strength", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    parser.add_argument("--scenario", nargs="+", choices=[s.name for s in SCENARIOS])
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what it started

    print(f"Machine: {machine()}; load average at start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.visits} visits per scenario, strength {args.strength}, "
          f"{args.workers} × `rapport worker`, gunicorn 2 × uvicorn worker", flush=True)
    rows = []
    started = time.monotonic()
    for database in args.database:
        if database == "postgresql" and (reason := private_postgres.unavailable()):
            print(f"PostgreSQL skipped: {reason}")
            continue
        with Stack(database, workers=args.workers) as stack:
            for scenario in SCENARIOS:
                if args.scenario and scenario.name not in args.scenario:
                    continue
                if scenario.postgres_only and database != "postgresql":
                    continue
                rows.append(run(stack, scenario, args.visits, args.strength,
                                timeout=600 + 60 * args.strength))
                print(table(rows[-1:]).splitlines()[1], flush=True)
            restarts = stack.workers.restarts
        print(f"{database}: workers started again {restarts}× after dying")
    print()
    print(table(rows))
    print(f"{time.monotonic() - started:.0f} s; load average at the end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if rows and all(row.clean for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
