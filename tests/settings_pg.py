"""The test settings on a real PostgreSQL server (tests/audit/test_postgres.py).

The server is the throwaway cluster of ``tests.pg.PostgresServer``; its
``env()`` supplies ``PG_HOST``, ``PG_PORT``, ``PG_USER`` and ``PG_DB``.
"""

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("PG_PORT", "5432"),
        "USER": os.environ.get("PG_USER", "postgres"),
        "PASSWORD": os.environ.get("PG_PASSWORD", ""),
        "NAME": os.environ.get("PG_DB", "secure_sso_test"),
        "CONN_MAX_AGE": 0,
    }
}
CONN_MAX_AGE = 0

SECURE_SSO_AUDIT = {
    "SIGNING_KEYS": {"k1": "tests-only-audit-signing-key-not-secret"},
    "SIGNING_KEY_ID": "k1",
}
