"""One writer process of tests/audit/test_postgres.py: ``python -m tests.audit.pg_writer N ID``.

Records ``N`` audit events ``test.concurrent`` (``worker=ID``, ``n=0..N-1``), each by its
own :func:`audit.record` call and so its own transaction, against the PostgreSQL database
that the ``PG_*`` variables name (``tests.settings_pg``). Exits 0 when all were stored.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tests.audit.pg_writer N WORKER_ID", file=sys.stderr)
        return 2
    count, worker = int(argv[0]), argv[1]
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings_pg"

    import django

    django.setup()

    import audit

    # Writers start together: PG_WRITER_START_AT (a time.time() value), when given, holds
    # each one, set up, until that moment, so that Django's start-up does not serialise them.
    start_at = os.environ.get("PG_WRITER_START_AT")
    if start_at:
        import time

        delay = float(start_at) - time.time()
        if delay > 0:
            time.sleep(delay)

    for i in range(count):
        audit.record("test.concurrent", outcome="success", worker=worker, n=i)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
