"""Settings of the example site: a plain Django project that uses django-secure-sso.

Everything secret or environment-specific comes from the environment:

* ``OIDC_ISSUER`` (or ``AUTH0_DOMAIN``), ``OIDC_CLIENT_ID``, ``OIDC_CLIENT_SECRET``;
* ``DATABASE_URL`` (default: ``sqlite:///db.sqlite3`` beside this project);
* ``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG``, ``DJANGO_ALLOWED_HOSTS``;
* ``AUDIT_SIGNING_KEY``: the audit chain's key (all a reviewer needs, with ``DATABASE_URL``,
  to run ``manage.py audit_verify``);
* ``AUDIT_ANCHOR_KEY`` (the site's Ed25519 anchor key, PEM), ``AUDIT_ANCHOR_FILE`` (default:
  ``audit-anchors.jsonl`` beside this project), ``AUDIT_ANCHOR_PUBLIC_KEYS`` (a reviewer's);
* ``SECURE_SSO_DEVELOPMENT=1`` to allow plain http on loopback (``check --deploy`` flags it);
  it defaults to ``DJANGO_DEBUG``, so ``make run`` works over http with any provider;
* ``DJANGO_SECURE_PROXY_SSL_HEADER=1`` when a TLS-terminating proxy sets ``X-Forwarded-Proto``.

Without ``DJANGO_DEBUG=1`` this is the production configuration: https only, HSTS, Secure
cookies, and ``python manage.py check --deploy`` reports nothing (tests/test_example_deploy.py).
"""

import os
from pathlib import Path

from audit.logs import configure_structlog, logging_config
from example.database import parse_database_url
from example.keys import development_anchor_key

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "development-only-" + "x" * 40
# Without DJANGO_SECRET_KEY (and DJANGO_DEBUG=1) the site refuses to serve: check example.E001
# stops manage.py, and example.wsgi refuses to load. The audit commands (audit_verify,
# audit_export, audit_prune) run without it: a reviewer needs DATABASE_URL and
# AUDIT_SIGNING_KEY only, not the keys that sign sessions or the provider's client secret.
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "secure_sso",
    "audit",
    "example",
]

MIDDLEWARE = [
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

AUTHENTICATION_BACKENDS = [
    "secure_sso.backends.SSOBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "example.urls"
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
WSGI_APPLICATION = "example.wsgi.application"

DATABASES = {
    "default": parse_database_url(
        os.environ.get("DATABASE_URL", "sqlite:///db.sqlite3"), base_dir=BASE_DIR
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"

LOGIN_URL = "secure_sso:login"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/"

# --- django-secure-sso -------------------------------------------------------
_auth0_domain = os.environ.get("AUTH0_DOMAIN", "")
# --- audit: the HMAC key for the tamper-evident chain, separate from SECRET_KEY ----
_audit_key = os.environ.get("AUDIT_SIGNING_KEY", "")
if not _audit_key and DEBUG:
    _audit_key = "development-only-audit-key-" + "x" * 32
# --- audit anchors: the chain's state, signed (Ed25519) and appended to a file the database
# cannot reach, and to the log stream. AUDIT_ANCHOR_KEY is the private key (PEM, from
# `manage.py audit_anchor --new-key`); a reviewer's machine sets AUDIT_ANCHOR_PUBLIC_KEYS
# (PEM) instead. In development a fixed key is used: anchors prove nothing there.
_anchor_key = os.environ.get("AUDIT_ANCHOR_KEY", "")
if not _anchor_key and DEBUG:
    _anchor_key = development_anchor_key()
SECURE_SSO_AUDIT = {
    "SIGNING_KEYS": {"k1": _audit_key},
    "SIGNING_KEY_ID": "k1",
    "SENSITIVE_CLAIMS": ["email"],
    "ANCHOR_SINKS": [
        {"CLASS": "audit.anchors.FileSink",
         "PATH": os.environ.get("AUDIT_ANCHOR_FILE", str(BASE_DIR / "audit-anchors.jsonl"))},
        "audit.anchors.LogSink",
    ],
    "ANCHOR_KEY": _anchor_key,
    "ANCHOR_PUBLIC_KEYS": [k for k in [os.environ.get("AUDIT_ANCHOR_PUBLIC_KEYS", "")] if k],
}

SECURE_SSO = {
    "ISSUER": os.environ.get("OIDC_ISSUER")
    or (f"https://{_auth0_domain}/" if _auth0_domain else ""),
    "CLIENT_ID": os.environ.get("OIDC_CLIENT_ID", ""),
    "CLIENT_SECRET": os.environ.get("OIDC_CLIENT_SECRET", ""),
    "SCOPES": ["openid", "email", "profile"]
    + (["groups"] if os.environ.get("OIDC_GROUPS_SCOPE") == "1" else []),
    "GROUPS_CLAIM": os.environ.get("OIDC_GROUPS_CLAIM", "groups"),
    "GROUP_MAP": {"admins": "Administrators"},
    "STAFF_GROUPS": ["admins"],
    # Plain http on loopback only; on by default with DJANGO_DEBUG=1 (`make run`).
    # Sensitive pages (like /account/security/) need a TOTP step-up at most this old.
    "STEP_UP_MAX_AGE": int(os.environ.get("EXAMPLE_STEP_UP_MAX_AGE", "300")),
    # Re-check the account with the provider every 15 minutes (silent prompt=none), so a
    # person disabled there loses access here; back-channel logout ends sessions at once.
    "REVALIDATE_AFTER": int(os.environ.get("EXAMPLE_REVALIDATE_AFTER", "900")),
    # The session's tokens are encrypted with this key (default: derived from SECRET_KEY).
    "TOKEN_ENCRYPTION_KEYS": [k for k in [os.environ.get("SSO_TOKEN_KEY", "")] if k],
    "DEVELOPMENT_MODE": os.environ.get("SECURE_SSO_DEVELOPMENT", "1" if DEBUG else "0") == "1",
    # Sent by TransportMiddleware; kept equal to Django's SECURE_HSTS_* below.
    "HSTS_SECONDS": 31_536_000,
    "HSTS_INCLUDE_SUBDOMAINS": True,
    "HSTS_PRELOAD": not DEBUG,
}
# The Content-Security-Policy is the package's (secure_sso.middleware.CSPMiddleware): nonce-based
# scripts and styles, no framing, forms only to this site and the provider.

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"  # Strict would lose the session on the provider's redirect back
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Production (no DJANGO_DEBUG=1): https only. TransportMiddleware already redirects, sends HSTS
# and marks every cookie Secure; Django's own settings say the same so `check --deploy` agrees.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = not DEBUG
SECURE_HSTS_SECONDS = 0 if DEBUG else SECURE_SSO["HSTS_SECONDS"]
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_SSO["HSTS_INCLUDE_SUBDOMAINS"]
# `preload` asks browsers to hard-code https for the domain and its subdomains: submit the
# domain to hstspreload.org only when every subdomain serves https.
SECURE_HSTS_PRELOAD = SECURE_SSO["HSTS_PRELOAD"]
if os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Structured logs: JSON lines in production, a readable console in development; every
# audit event is one line carrying the request id, client IP and path.
LOGGING = logging_config(json=not DEBUG)
configure_structlog(json=not DEBUG)
