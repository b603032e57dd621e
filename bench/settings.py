"""Django settings for the bench/*.py scripts: the test settings, with what measuring needs.

A SQLite file in a temporary directory (removed at exit) with a persistent connection, so
per-request numbers do not include opening the database. The provider settings point at
``BENCH_SSO_ISSUER`` (bench/signin.py starts a forged provider on loopback first).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from tests.settings import *  # noqa: F403  the shape the suite tests, changed below
from tests.settings import MIDDLEWARE as _TEST_MIDDLEWARE

_DB_DIR = tempfile.mkdtemp(prefix="secure-sso-bench-")
atexit.register(shutil.rmtree, _DB_DIR, ignore_errors=True)

SECRET_KEY = "bench-only-not-secret"  # noqa: S105
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "tests.site"]  # noqa: F405

#: ``django-admin startproject``'s list, unchanged.
DJANGO_DEFAULT_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
#: The package's recommended list (README, "Add the hardening middleware").
PACKAGE_MIDDLEWARE = [
    "secure_sso.middleware.TransportMiddleware",
    "audit.middleware.AuditContextMiddleware",
    *(m for m in _TEST_MIDDLEWARE if m != "secure_sso.middleware.TransportMiddleware"),
]
MIDDLEWARE = list(PACKAGE_MIDDLEWARE)

ROOT_URLCONF = "bench.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(_DB_DIR, "bench.sqlite3"),
        "CONN_MAX_AGE": None,
    }
}
LOGIN_REDIRECT_URL = "/whoami/"
SECURE_SSO = {
    "ISSUER": os.environ.get("BENCH_SSO_ISSUER", "http://127.0.0.1:1"),
    "CLIENT_ID": "forge-client",
    "CLIENT_SECRET": "forge-secret",
    # Only for the loopback forged provider (plain http); browsers' requests are https.
    "DEVELOPMENT_MODE": True,
    "HTTP_TIMEOUT": 5,
    # Group mapping on, so a sign-in's user/group sync does its real work.
    "GROUPS_CLAIM": "groups",
    "GROUP_MAP": {"engineering": "Engineering", "admins": "Admins"},
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"], "level": "WARNING"},
    "loggers": {"django.security": {"handlers": ["null"], "propagate": False}},
}
