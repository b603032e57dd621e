"""Settings for the test suite: the package installed the way README tells users to."""

SECRET_KEY = "tests-only-not-secret"  # noqa: S105
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
    "tests.site",
]
MIDDLEWARE = [
    "secure_sso.middleware.TransportMiddleware",
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
ROOT_URLCONF = "tests.site.urls"
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
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "/static/"
LOGIN_URL = "secure_sso:login"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast tests only
SECURE_SSO = {
    "ISSUER": "http://127.0.0.1:1",
    "CLIENT_ID": "test-client",
    "CLIENT_SECRET": "test-secret",
    "DEVELOPMENT_MODE": True,
    "HTTP_TIMEOUT": 3,
}
SECURE_SSO_AUDIT = {
    "SIGNING_KEYS": {"k1": "tests-only-audit-key-not-a-real-secret"},
    "SIGNING_KEY_ID": "k1",
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"django.security": {"handlers": ["null"], "propagate": True}},
}
