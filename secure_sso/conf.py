"""The one place that reads the ``SECURE_SSO`` setting.

Every other module asks :data:`sso_settings` so that defaults, normalisation and
caching live here, and so that tests changing ``SECURE_SSO`` (pytest-django's
``settings`` fixture, ``override_settings``) take effect at once through the
``setting_changed`` receiver at the bottom of this module.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.shortcuts import resolve_url
from django.utils.module_loading import import_string

SETTING_NAME = "SECURE_SSO"

#: Documented defaults; README's settings reference mirrors this dict.
DEFAULTS: dict[str, Any] = {
    # The provider. ISSUER is compared exactly with the discovery document's issuer.
    "ISSUER": "",
    "CLIENT_ID": "",
    "CLIENT_SECRET": "",
    "TOKEN_ENDPOINT_AUTH_METHOD": "client_secret_basic",
    "SCOPES": ["openid", "email", "profile"],
    "EXTRA_AUTHORIZE_PARAMS": {},
    # Pinned by the relying party, never taken from the provider's metadata.
    "ID_TOKEN_ALGORITHMS": ["RS256"],
    "CLOCK_SKEW": 60,
    "ID_TOKEN_MAX_AGE": 600,
    "FETCH_USERINFO": True,
    # Users.
    "CLAIM_MAPPING": {"email": "email", "first_name": "given_name", "last_name": "family_name"},
    "USERNAME_CLAIMS": ["preferred_username", "nickname", "email"],
    "CREATE_USERS": True,
    "GROUPS_CLAIM": None,
    "GROUP_MAP": {},
    "STAFF_GROUPS": [],
    "SUPERUSER_GROUPS": [],
    # Where to go.
    "LOGIN_REDIRECT_URL": None,
    "LOGOUT_REDIRECT_URL": None,
    "REDIRECT_URI": None,
    "PROVIDER_LOGOUT": True,
    # Admin integration.
    "ADMIN_SSO": True,
    "ADMIN_PASSWORD_LOGIN": True,
    # Transport and caching.
    "HTTP_TIMEOUT": 5.0,
    "METADATA_TTL": 3600,
    "JWKS_TTL": 3600,
    "JWKS_MIN_REFRESH_INTERVAL": 60,
    # Pending sign-ins (state, nonce, PKCE verifier).
    "PENDING_LOGIN_TTL": 600,
    "MAX_PENDING_LOGINS": 5,
    # Plain http only for loopback hosts; `check --deploy` reports it as an error.
    "DEVELOPMENT_MODE": False,
    # Extension point.
    "ADAPTER": "secure_sso.adapter.DefaultSSOAdapter",
    # Transport (TransportMiddleware).
    "HTTPS_REDIRECT": True,
    "HSTS_SECONDS": 31_536_000,
    "HSTS_INCLUDE_SUBDOMAINS": True,
    "HSTS_PRELOAD": False,
    "JS_READABLE_COOKIES": [],
    "COOKIE_SAMESITE": "Lax",
    "REFERRER_POLICY": "same-origin",
    "CROSS_ORIGIN_OPENER_POLICY": "same-origin",
    "PERMISSIONS_POLICY": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    # Sessions (SessionGuardMiddleware).
    "SESSION_BINDING": True,
    "BINDING_FINGERPRINT": True,
    "BINDING_COOKIE_NAME": "secure_sso_binding",
    "SESSION_IDLE_TIMEOUT": 1800,
    "SESSION_ABSOLUTE_TIMEOUT": 43_200,
    # Content Security Policy (CSPMiddleware): directives added to the package's policy.
    "CSP": {},
    # Step-up (StepUpMiddleware, @step_up_required, StepUpRequiredMixin).
    "STEP_UP_MAX_AGE": 300,
    "STEP_UP_METHOD": "totp",
    "STEP_UP_URLS": [],
    "STEP_UP_ADMIN": False,
    "STEP_UP_WITHOUT_DEVICE": "enroll",
    "STEP_UP_ACR_VALUES": [],
    "STEP_UP_AMR": ["mfa", "otp"],
    "RECOVERY_CODES": 10,
    # Single sign-out (back-channel logout, RP-initiated logout).
    "BACKCHANNEL_LOGOUT": True,
    "LOGOUT_TOKEN_MAX_AGE": 120,
    "POST_LOGOUT_REDIRECT_URI": None,
    # Tokens: kept server-side, encrypted; refreshed when REFRESH_TOKENS is on.
    "TOKEN_ENCRYPTION_KEYS": [],
    "REFRESH_TOKENS": False,
    "REFRESH_BEFORE_EXPIRY": 60,
    # Re-validation with the provider every N seconds (0: off).
    "REVALIDATE_AFTER": 0,
    # Where single-use values (states, nonces, logout token jtis) are claimed.
    "STATE_STORE": "database",
    "STATE_CACHE_ALIAS": "default",
}

#: Algorithms a relying party may pin. ``none`` and the HMAC family are excluded:
#: HS* would make the client secret a signing key shared with every copy of it.
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
TOKEN_ENDPOINT_AUTH_METHODS = frozenset({"client_secret_basic", "client_secret_post"})


def is_loopback_host(host: str | None) -> bool:
    """``localhost``, ``*.localhost`` or a loopback IP literal; never a name like ``127.evil``."""
    if not host:
        return False
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine, the only place plain http is tolerated."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return is_loopback_host(host)


class SSOSettings:
    """Typed, cached view of ``settings.SECURE_SSO`` merged over :data:`DEFAULTS`.

    Values are read once per process (or per ``setting_changed``), so the
    request path never parses settings.
    """

    @cached_property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, SETTING_NAME, {})
        return dict(value) if isinstance(value, dict) else {}

    def _get(self, key: str) -> Any:
        return self.user_settings.get(key, DEFAULTS[key])

    @property
    def unknown_keys(self) -> list[str]:
        return sorted(set(self.user_settings) - set(DEFAULTS))

    @cached_property
    def ISSUER(self) -> str:
        return str(self._get("ISSUER") or "")

    @cached_property
    def CLIENT_ID(self) -> str:
        return str(self._get("CLIENT_ID") or "")

    @cached_property
    def CLIENT_SECRET(self) -> str:
        return str(self._get("CLIENT_SECRET") or "")

    @cached_property
    def TOKEN_ENDPOINT_AUTH_METHOD(self) -> str:
        return str(self._get("TOKEN_ENDPOINT_AUTH_METHOD"))

    @cached_property
    def SCOPES(self) -> tuple[str, ...]:
        scopes = self._get("SCOPES")
        if isinstance(scopes, str):
            scopes = scopes.split()
        ordered = ["openid", *[s for s in scopes if s != "openid"]]
        # Refresh tokens are asked for with offline_access (OpenID Connect Core 11).
        if self.REFRESH_TOKENS:
            ordered.append("offline_access")
        return tuple(dict.fromkeys(ordered))

    @cached_property
    def EXTRA_AUTHORIZE_PARAMS(self) -> dict[str, str]:
        return dict(self._get("EXTRA_AUTHORIZE_PARAMS") or {})

    @cached_property
    def ID_TOKEN_ALGORITHMS(self) -> tuple[str, ...]:
        return tuple(self._get("ID_TOKEN_ALGORITHMS"))

    @cached_property
    def CLOCK_SKEW(self) -> int:
        return int(self._get("CLOCK_SKEW"))

    @cached_property
    def ID_TOKEN_MAX_AGE(self) -> int:
        return int(self._get("ID_TOKEN_MAX_AGE"))

    @cached_property
    def FETCH_USERINFO(self) -> bool:
        return bool(self._get("FETCH_USERINFO"))

    @cached_property
    def CLAIM_MAPPING(self) -> dict[str, str]:
        return dict(self._get("CLAIM_MAPPING") or {})

    @cached_property
    def USERNAME_CLAIMS(self) -> tuple[str, ...]:
        return tuple(self._get("USERNAME_CLAIMS") or ())

    @cached_property
    def CREATE_USERS(self) -> bool:
        return bool(self._get("CREATE_USERS"))

    @cached_property
    def GROUPS_CLAIM(self) -> str | None:
        value = self._get("GROUPS_CLAIM")
        return value if isinstance(value, str) and value else None

    @cached_property
    def GROUP_MAP(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self._get("GROUP_MAP") or {}).items()}

    def _group_names(self, key: str) -> frozenset[str]:
        # SECURITY: fail closed. A bare string would otherwise become a set of letters
        # (secure_sso.E014 reports it at start-up).
        value = self._get(key)
        if not isinstance(value, list | tuple | set | frozenset):
            return frozenset()
        return frozenset(g for g in value if isinstance(g, str) and g)

    @cached_property
    def STAFF_GROUPS(self) -> frozenset[str]:
        return self._group_names("STAFF_GROUPS")

    @cached_property
    def SUPERUSER_GROUPS(self) -> frozenset[str]:
        return self._group_names("SUPERUSER_GROUPS")

    @cached_property
    def LOGIN_REDIRECT_URL(self) -> str:
        # Like Django's own setting, a URL name is accepted; resolved once, on first use.
        return resolve_url(self._get("LOGIN_REDIRECT_URL") or settings.LOGIN_REDIRECT_URL or "/")

    @cached_property
    def LOGOUT_REDIRECT_URL(self) -> str:
        return resolve_url(self._get("LOGOUT_REDIRECT_URL") or settings.LOGOUT_REDIRECT_URL or "/")

    @cached_property
    def REDIRECT_URI(self) -> str | None:
        return self._get("REDIRECT_URI") or None

    @cached_property
    def PROVIDER_LOGOUT(self) -> bool:
        return bool(self._get("PROVIDER_LOGOUT"))

    @cached_property
    def ADMIN_SSO(self) -> bool:
        return bool(self._get("ADMIN_SSO"))

    @cached_property
    def ADMIN_PASSWORD_LOGIN(self) -> bool:
        return bool(self._get("ADMIN_PASSWORD_LOGIN"))

    @cached_property
    def HTTP_TIMEOUT(self) -> float:
        return float(self._get("HTTP_TIMEOUT"))

    @cached_property
    def METADATA_TTL(self) -> int:
        return int(self._get("METADATA_TTL"))

    @cached_property
    def JWKS_TTL(self) -> int:
        return int(self._get("JWKS_TTL"))

    @cached_property
    def JWKS_MIN_REFRESH_INTERVAL(self) -> int:
        return int(self._get("JWKS_MIN_REFRESH_INTERVAL"))

    @cached_property
    def PENDING_LOGIN_TTL(self) -> int:
        return int(self._get("PENDING_LOGIN_TTL"))

    @cached_property
    def MAX_PENDING_LOGINS(self) -> int:
        return int(self._get("MAX_PENDING_LOGINS"))

    @cached_property
    def DEVELOPMENT_MODE(self) -> bool:
        return bool(self._get("DEVELOPMENT_MODE"))

    @cached_property
    def ADAPTER(self) -> str:
        return str(self._get("ADAPTER"))

    @cached_property
    def HTTPS_REDIRECT(self) -> bool:
        return bool(self._get("HTTPS_REDIRECT"))

    @cached_property
    def hsts_header(self) -> str | None:
        """The whole ``Strict-Transport-Security`` value, built once."""
        seconds = int(self._get("HSTS_SECONDS") or 0)
        if seconds <= 0:
            return None
        value = f"max-age={seconds}"
        if self._get("HSTS_INCLUDE_SUBDOMAINS"):
            value += "; includeSubDomains"
        if self._get("HSTS_PRELOAD"):
            value += "; preload"
        return value

    @cached_property
    def JS_READABLE_COOKIES(self) -> frozenset[str]:
        return frozenset(self._get("JS_READABLE_COOKIES") or ())

    @cached_property
    def COOKIE_SAMESITE(self) -> str:
        return str(self._get("COOKIE_SAMESITE"))

    @cached_property
    def security_headers(self) -> tuple[tuple[str, str], ...]:
        """Headers set (if the view did not) on every response."""
        headers = [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", self._get("REFERRER_POLICY")),
            ("Cross-Origin-Opener-Policy", self._get("CROSS_ORIGIN_OPENER_POLICY")),
            ("Permissions-Policy", self._get("PERMISSIONS_POLICY")),
        ]
        return tuple((name, str(value)) for name, value in headers if value)

    @cached_property
    def SESSION_BINDING(self) -> bool:
        return bool(self._get("SESSION_BINDING"))

    @cached_property
    def BINDING_FINGERPRINT(self) -> bool:
        return bool(self._get("BINDING_FINGERPRINT"))

    @cached_property
    def BINDING_COOKIE_NAME(self) -> str:
        return str(self._get("BINDING_COOKIE_NAME"))

    @cached_property
    def SESSION_IDLE_TIMEOUT(self) -> int:
        return int(self._get("SESSION_IDLE_TIMEOUT") or 0)

    @cached_property
    def SESSION_ABSOLUTE_TIMEOUT(self) -> int:
        return int(self._get("SESSION_ABSOLUTE_TIMEOUT") or 0)

    @cached_property
    def CSP(self) -> dict[str, Any]:
        value = self._get("CSP")
        return dict(value) if isinstance(value, dict) else {}

    @cached_property
    def csp_policy(self) -> dict[str, Any] | None:
        """The package's CSP directives, or ``None`` when the project sets its own policy."""
        if getattr(settings, "CONTENT_SECURITY_POLICY", None):
            return None
        from secure_sso.csp import package_policy

        return package_policy()

    @cached_property
    def csp_fallback(self) -> bool:
        """Whether pages answered before the CSP middleware ran still need the package policy."""
        from secure_sso.middleware import CSPMiddleware

        return self.csp_policy is not None and any(
            isinstance(path, str) and path.rsplit(".", 1)[-1] == CSPMiddleware.__name__
            for path in settings.MIDDLEWARE
        )

    @cached_property
    def session_cookie_name(self) -> str:
        return str(settings.SESSION_COOKIE_NAME)

    @cached_property
    def STEP_UP_MAX_AGE(self) -> int:
        return int(self._get("STEP_UP_MAX_AGE"))

    @cached_property
    def STEP_UP_METHOD(self) -> str:
        return str(self._get("STEP_UP_METHOD"))

    @cached_property
    def step_up_patterns(self) -> tuple[tuple[str, str], ...]:
        """``("name", "app:view")`` or ``("prefix", "/billing/")`` rules, parsed once."""
        rules: list[tuple[str, str]] = []
        for entry in self._get("STEP_UP_URLS") or ():
            if isinstance(entry, str) and entry.startswith("/"):
                rules.append(("prefix", entry))
            elif isinstance(entry, str) and entry:
                rules.append(("name", entry))
        return tuple(rules)

    @cached_property
    def STEP_UP_ADMIN(self) -> bool:
        return bool(self._get("STEP_UP_ADMIN"))

    @cached_property
    def STEP_UP_WITHOUT_DEVICE(self) -> str:
        return str(self._get("STEP_UP_WITHOUT_DEVICE"))

    @cached_property
    def STEP_UP_ACR_VALUES(self) -> tuple[str, ...]:
        return tuple(self._get("STEP_UP_ACR_VALUES") or ())

    @cached_property
    def STEP_UP_AMR(self) -> frozenset[str]:
        return frozenset(self._get("STEP_UP_AMR") or ())

    @cached_property
    def RECOVERY_CODES(self) -> int:
        return int(self._get("RECOVERY_CODES"))

    @cached_property
    def BACKCHANNEL_LOGOUT(self) -> bool:
        return bool(self._get("BACKCHANNEL_LOGOUT"))

    @cached_property
    def LOGOUT_TOKEN_MAX_AGE(self) -> int:
        return int(self._get("LOGOUT_TOKEN_MAX_AGE"))

    @cached_property
    def POST_LOGOUT_REDIRECT_URI(self) -> str | None:
        return self._get("POST_LOGOUT_REDIRECT_URI") or None

    @cached_property
    def token_keys(self) -> tuple[bytes, ...]:
        """Secrets for token encryption, newest first: ``TOKEN_ENCRYPTION_KEYS``, or
        ``SECRET_KEY`` and its fallbacks (keys are derived from them, never used raw)."""
        keys = self._get("TOKEN_ENCRYPTION_KEYS") or []
        if isinstance(keys, str):
            keys = [keys]
        if not keys:
            keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
        return tuple(str(k).encode() for k in keys if k)

    @cached_property
    def REFRESH_TOKENS(self) -> bool:
        return bool(self._get("REFRESH_TOKENS"))

    @cached_property
    def REFRESH_BEFORE_EXPIRY(self) -> int:
        return int(self._get("REFRESH_BEFORE_EXPIRY"))

    @cached_property
    def REVALIDATE_AFTER(self) -> int:
        value = self._get("REVALIDATE_AFTER")
        return int(value) if isinstance(value, int | float) and value > 0 else 0

    @cached_property
    def STATE_STORE(self) -> str:
        return str(self._get("STATE_STORE"))

    @cached_property
    def STATE_CACHE_ALIAS(self) -> str:
        return str(self._get("STATE_CACHE_ALIAS"))

    @cached_property
    def sso_paths(self) -> frozenset[str]:
        """The package's own sign-in and sign-out paths, resolved once."""
        from django.urls import NoReverseMatch, reverse

        paths = set()
        for name in ("login", "callback", "logout", "logout_complete", "backchannel_logout"):
            try:
                paths.add(reverse(f"secure_sso:{name}"))
            except NoReverseMatch:
                continue
        return frozenset(paths)

    @cached_property
    def login_url(self) -> str:
        return resolve_url(settings.LOGIN_URL)

    @cached_property
    def adapter_class(self) -> type:
        return import_string(self.ADAPTER)

    @property
    def is_configured(self) -> bool:
        return bool(self.ISSUER and self.CLIENT_ID)

    @cached_property
    def is_auth0(self) -> bool:
        host = urlsplit(self.ISSUER).hostname or ""
        return host == "auth0.com" or host.endswith(".auth0.com")

    def allows_http(self, url: str) -> bool:
        """Plain http is accepted only in development mode and only for loopback hosts."""
        return self.DEVELOPMENT_MODE and is_loopback_url(url)

    def reload(self) -> None:
        for name in list(self.__dict__):
            del self.__dict__[name]


sso_settings = SSOSettings()


_WATCHED_SETTINGS = frozenset(
    {SETTING_NAME, "LOGIN_REDIRECT_URL", "LOGOUT_REDIRECT_URL", "LOGIN_URL",
     "CONTENT_SECURITY_POLICY", "SESSION_COOKIE_NAME", "MIDDLEWARE", "SECRET_KEY",
     "SECRET_KEY_FALLBACKS", "CACHES"}
)


@receiver(setting_changed)
def _reload_sso_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in _WATCHED_SETTINGS:
        sso_settings.reload()
        from secure_sso import client

        client.reset_provider_cache()
