"""Django settings for the bench/*.py scripts (the shape of tests/settings.py).

A SQLite file in a temporary directory (removed at exit) with a persistent connection,
so per-request numbers do not include opening the database. The provider settings point
at ``BENCH_SSO_ISSUER`` (bench/signin.py starts a forged provider on loopback first).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_DB_DIR = tempfile.mkdtemp(prefix="secure-sso-bench-")
atexit.register(shutil.rmtree, _DB_DIR, ignore_errors=True)

SECRET_KEY = "bench-only-not-secret"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "secure_sso",
    "audit",
]

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
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "secure_sso.middleware.SessionGuardMiddleware",
    "secure_sso.middleware.StepUpMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "secure_sso.middleware.CSPMiddleware",
]
MIDDLEWARE = list(PACKAGE_MIDDLEWARE)

AUTHENTICATION_BACKENDS = [
    "secure_sso.backends.SSOBackend",
    "django.contrib.auth.backends.ModelBackend",
]
ROOT_URLCONF = "bench.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(_DB_DIR, "bench.sqlite3"),
        "CONN_MAX_AGE": None,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "/static/"
LOGIN_URL = "secure_sso:login"
LOGIN_REDIRECT_URL = "/whoami/"
LOGOUT_REDIRECT_URL = "/"
# A fast hasher: the password-login baseline should measure the stack, not PBKDF2.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
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
SECURE_SSO_AUDIT = {
    "SIGNING_KEYS": {"k1": "bench-only-audit-key-not-a-real-secret"},
    "SIGNING_KEY_ID": "k1",
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"], "level": "WARNING"},
    "loggers": {"django.security": {"handlers": ["null"], "propagate": False}},
}
