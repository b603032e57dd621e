"""Records events whose values PostgreSQL stores differently from how they were given.

``python -m tests.audit.pg_awkward`` (``PG_*`` variables as for pg_writer): -0.0, huge
floats, NUL and lone surrogates in text, and an IPv6 zone id. The chain must still verify.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings_pg"
    import django

    django.setup()
    from django.test import RequestFactory

    import audit

    request = RequestFactory().get("/", REMOTE_ADDR="fe80::1%eth0", HTTP_USER_AGENT="a\x00b")
    audit.record(
        "test.awkward",
        request=request,
        reason="nul\x00here",
        subject="sub\ud800",
        zero=-0.0,
        huge=1e16,
        huger=1.5e300,
        big_int=2**70,
        text="a\x00b\ud800c",
        nested={"\ud800key": [1.0, -0.0, {"x": 1e20}]},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
