"""Fuzz benchmark: mutated deliveries to every webhook endpoint, signed and not.

Rapport in this process (Flask's test client) on a private ``redis-server`` (temporary
folder) and SQLite in the same folder, or a fresh schema of PostgreSQL; the platforms'
local stand-ins (tests/sandboxes) for Square, Mindbody and Acuity, a local SMTP server
and callback receiver. ``--cases`` deliveries per endpoint from hypothesis
(tests/support/fuzzing.py: the recorded bodies of tests/fixtures mutated, odd headers,
two in three validly signed), each checked (tests/support/fuzz_run.py): never 500 or
more, no exception out of the receiver, 2xx or 400 naming the field for a signed body,
401 otherwise; every 200 cases the stored events' jobs run in this process, and no job
may fail nor any event be left failing. Cliniko sends no webhooks (it is polled).

Printed per endpoint: cases, validly signed, answers by status, answers of 500 or more,
receiver exceptions, worker failures, time; with the machine. Exits 1 if any of those
three is not 0 (the first few of each are printed).

    python bench/fuzz.py [--cases 10000] [--platform all|generic|square|square-app|mindbody|acuity]
                         [--seed N] [--database sqlite|postgresql]

The stand-ins check requests against the platforms' specifications, kept in shared/
beside the repository (or where ``RAPPORT_SHARED_DIR`` says).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from ingest import machine  # noqa: E402

from handlers.mindbody import api as mindbody_api  # noqa: E402
from plugin import create_app  # noqa: E402
from plugin.tasks.embedded_redis import EmbeddedRedis  # noqa: E402
from tests.sandboxes.acuity import AcuitySandbox  # noqa: E402
from tests.sandboxes.mindbody import MindbodySandbox  # noqa: E402
from tests.sandboxes.square import SquareSandbox  # noqa: E402
from tests.support import fuzz_run  # noqa: E402
from tests.support.databases import PostgresSchemas  # noqa: E402
from tests.support.rapport import make_config  # noqa: E402
from tests.support.servers import CallbackReceiver, SMTPServer  # noqa: E402

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
STAND_INS = {"square": SquareSandbox, "mindbody": MindbodySandbox, "acuity": AcuitySandbox}


def table(tallies: list[fuzz_run.Tally]) -> str:
    lines = ["| endpoint | cases | signed | answers | ≥ 500 | receiver exceptions "
             "| worker failures | time |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    for tally in tallies:
        answers = ", ".join(f"{code}: {count}" for code, count in sorted(tally.statuses.items()))
        lines.append(f"| {tally.endpoint} | {tally.cases:,} | {tally.signed:,} | {answers} "
                     f"| {tally.over_500} | {len(tally.exceptions)} | {len(tally.failures)} "
                     f"| {tally.seconds:.0f} s |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per endpoint")
    parser.add_argument("--platform", default="all", choices=["all", *fuzz_run.PLATFORMS])
    parser.add_argument("--seed", type=int, default=None, help="hypothesis's seed")
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    chosen = list(fuzz_run.PLATFORMS) if args.platform == "all" else [args.platform]

    workdir = Path(tempfile.mkdtemp(prefix="rapport-fuzz-"))
    tallies = []
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        embedded = EmbeddedRedis(workdir / "redis", persist=False)
        redis_url = embedded.start()
        stack.callback(embedded.stop)
        smtp = SMTPServer().start()
        stack.callback(smtp.stop)
        callbacks = CallbackReceiver().start()
        stack.callback(callbacks.stop)
        mindbody_api.forget_tokens()
        needed = {fuzz_run.stand_in_for(name) for name in chosen} & set(STAND_INS)
        sandboxes = {name: stack.enter_context(STAND_INS[name]()) for name in sorted(needed)}
        config = make_config(workdir, redis_url, smtp.port, **fuzz_run.app_config(sandboxes))
        if args.database == "postgresql":
            schemas = PostgresSchemas(POSTGRES_URL)
            stack.callback(schemas.close)
            config["DATABASE_URL"] = schemas.emptied()
        app = create_app(config)
        # Rapport's log lines (thousands of refusals) are not printed; those at ERROR are
        # counted, and the first few printed, by the fuzz itself.
        for handler in logging.getLogger().handlers:
            handler.setLevel(logging.CRITICAL)
        stack.callback(lambda: app.extensions["rapport.engine"].dispose())
        found = fuzz_run.endpoints(app, sandboxes, callbacks.url)
        print(f"Fuzz: {args.cases:,} cases per endpoint, {args.database}, seed {args.seed}; "
              f"{machine()}; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", flush=True)
        for name in chosen:
            tally = fuzz_run.fuzz(app, found[name], args.cases, seed=args.seed)
            tallies.append(tally)
            print(f"  {name}: {tally.cases:,} cases in {tally.seconds:.0f} s", flush=True)
            for kind in ("exceptions", "unexpected", "failures"):
                for line in getattr(tally, kind)[:5]:
                    print(f"    {kind}: {line[:400]}", flush=True)
    print()
    print(table(tallies))
    return 0 if all(t.over_500 == 0 and not t.exceptions and not t.failures
                    and not t.unexpected for t in tallies) else 1


if __name__ == "__main__":
    sys.exit(main())
