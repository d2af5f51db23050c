"""What the tests share, importable as ``tests.support.<module>``:

- ``servers``: real SMTP, an HTTP callback receiver, Rapport on a real socket;
- ``rapport``: the application's test configuration, draining its jobs, subprocesses;
- ``clock``: time moved rather than waited for (RQ's scheduled jobs made due);
- ``databases``: the schema built once per session (SQLite template, PostgreSQL schema);
- ``generic``: the generic platform's events, signing and clinics;
- ``square``: Rapport facing the local Square, a Square clinic, Square's deliveries;
- ``survey``: reading check-in emails and answering surveys;
- ``sample_check_in``: one check-in's answers, shared by the notes' tests;
- ``rq_probe``: a job RQ imports by dotted path;
- ``rows``: reading what Rapport stored (check-ins, their instrument);
- ``browser``: a real Chromium, with axe-core injected;
- ``waiting``: waiting for something another process does, with a deadline.
"""
