"""The test settings on a real PostgreSQL server (tests/audit/test_postgres.py and
tests/audit/test_pg_least_privilege.py).

The server is the throwaway cluster of ``tests.pg.PostgresServer``; its
``env()`` supplies ``PG_HOST``, ``PG_PORT``, ``PG_USER`` and ``PG_DB``.

Two aliases, as README's "Least-privilege PostgreSQL" sets them up: ``default`` is the
role the site runs as (``PG_USER``), ``audit_admin`` the role that owns the audit tables,
migrates and prunes (``PG_ADMIN_USER``, else the same role as ``default``).
"""

import os

from tests.settings import *  # noqa: F403

_SERVER = {
    "ENGINE": "django.db.backends.postgresql",
    "HOST": os.environ.get("PG_HOST", "127.0.0.1"),
    "PORT": os.environ.get("PG_PORT", "5432"),
    "USER": os.environ.get("PG_USER", "postgres"),
    "PASSWORD": os.environ.get("PG_PASSWORD", ""),
    "NAME": os.environ.get("PG_DB", "secure_sso_test"),
    "CONN_MAX_AGE": 0,
}
DATABASES = {
    "default": _SERVER,
    "audit_admin": {
        **_SERVER,
        "USER": os.environ.get("PG_ADMIN_USER", _SERVER["USER"]),
        "PASSWORD": os.environ.get("PG_ADMIN_PASSWORD", _SERVER["PASSWORD"]),
    },
}
CONN_MAX_AGE = 0

SECURE_SSO_AUDIT = {
    "SIGNING_KEYS": {"k1": "tests-only-audit-signing-key-not-secret"},
    "SIGNING_KEY_ID": "k1",
}
