"""System checks: misconfiguration stops ``manage.py check`` (and ``runserver``) with a fix.

Every id is listed in README's "System checks" table with its fix.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from secure_sso.conf import (
    ALLOWED_ALGORITHMS,
    DEFAULTS,
    TOKEN_ENDPOINT_AUTH_METHODS,
    is_loopback_url,
    sso_settings,
)

BACKEND = "secure_sso.backends.SSOBackend"

E001 = "SECURE_SSO['ISSUER'] is not set."
E001_HINT = (
    "Set it to the provider's issuer exactly as its discovery document spells it, "
    "e.g. 'https://YOUR_TENANT.auth0.com/' (note the trailing slash for Auth0)."
)
E002 = "SECURE_SSO['ISSUER'] must be an https URL without query or fragment."
E002_HINT = (
    "Use the https issuer URL. Plain http is accepted only for 127.0.0.1/localhost "
    "with SECURE_SSO['DEVELOPMENT_MODE'] = True."
)
E003 = "SECURE_SSO['CLIENT_ID'] is not set."
E003_HINT = "Copy the client (application) id from the provider's application settings."
E004 = "SECURE_SSO['CLIENT_SECRET'] is not set."
E004_HINT = (
    "Read it from the environment, e.g. SECURE_SSO['CLIENT_SECRET'] = "
    "os.environ['OIDC_CLIENT_SECRET']; never commit it."
)
E005 = "SECURE_SSO['ID_TOKEN_ALGORITHMS'] must be a non-empty list of asymmetric algorithms."
E005_HINT = "Use e.g. ['RS256']; 'none' and HS256/HS384/HS512 are refused. Allowed: {}."
E006 = "SECURE_SSO['TOKEN_ENDPOINT_AUTH_METHOD'] is not supported."
E006_HINT = "Use 'client_secret_basic' (default) or 'client_secret_post'."
E007 = "SECURE_SSO['SCOPES'] must be a list of scope strings."
E007_HINT = "E.g. ['openid', 'email', 'profile']; 'openid' is always added."
E008 = "The SSO authentication backend is not in AUTHENTICATION_BACKENDS."
E008_HINT = f"Add '{BACKEND}' to AUTHENTICATION_BACKENDS."
E009 = "SECURE_SSO['{key}'] must be a positive number."
E009_HINT = "See README's settings reference for the default."
E010 = "SECURE_SSO['DEVELOPMENT_MODE'] is on: plain http sign-in is allowed."
E010_HINT = "Remove DEVELOPMENT_MODE (or set it to False) in production settings."
E011 = "SECURE_SSO['REDIRECT_URI'] must be an https URL."
E011_HINT = "Use the exact https callback URL registered at the provider, or leave it unset."
E012 = "SECURE_SSO['GROUP_MAP'] must map provider group names (strings) to Django group names."
E012_HINT = "E.g. {'admins': 'Administrators'}."
E013 = "secure_sso needs the session and authentication middleware."
E013_HINT = (
    "Add 'django.contrib.sessions.middleware.SessionMiddleware' and "
    "'django.contrib.auth.middleware.AuthenticationMiddleware' to MIDDLEWARE."
)
E014 = "SECURE_SSO['{key}'] must be a list of provider group names."
E014_HINT = (
    "E.g. ['admins']. A bare string would be read as a set of single characters, "
    "granting the flag to members of any one-letter group."
)
E015 = "SECURE_SSO['GROUPS_CLAIM'] must be a claim name (a string) or None."
E015_HINT = "E.g. 'groups', or Auth0's namespaced 'https://example.com/groups'."
W001 = "SECURE_SSO has unknown keys: {keys}."
W001_HINT = "Check the spelling against README's settings reference; unknown keys are ignored."
W002 = "SECURE_SSO group rules are set but SECURE_SSO['GROUPS_CLAIM'] is not."
W002_HINT = "Set GROUPS_CLAIM to the claim that carries groups, e.g. 'groups'."
W003 = "Signed-cookie sessions keep the ID token and claims in the browser and cannot be revoked."
W003_HINT = "Use a server-side SESSION_ENGINE such as 'django.contrib.sessions.backends.db'."


def _user_value(key: str) -> Any:
    return sso_settings.user_settings.get(key, DEFAULTS[key])


def _is_https_or_dev(url: Any) -> bool:
    if not isinstance(url, str) or not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.query or parts.fragment or not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and bool(_user_value("DEVELOPMENT_MODE")) and is_loopback_url(url)


@register(Tags.security)
def check_provider(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    errors: list[Any] = []
    issuer = _user_value("ISSUER")
    if not issuer:
        errors.append(Error(E001, hint=E001_HINT, id="secure_sso.E001"))
    elif not _is_https_or_dev(issuer):
        errors.append(Error(E002, hint=E002_HINT, id="secure_sso.E002"))
    if not _user_value("CLIENT_ID"):
        errors.append(Error(E003, hint=E003_HINT, id="secure_sso.E003"))
    if not _user_value("CLIENT_SECRET"):
        errors.append(Error(E004, hint=E004_HINT, id="secure_sso.E004"))
    redirect_uri = _user_value("REDIRECT_URI")
    if redirect_uri and not _is_https_or_dev(redirect_uri):
        errors.append(Error(E011, hint=E011_HINT, id="secure_sso.E011"))
    return errors


@register(Tags.security)
def check_algorithms(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    algs = _user_value("ID_TOKEN_ALGORITHMS")
    if (
        not isinstance(algs, list | tuple)
        or not algs
        or any(a not in ALLOWED_ALGORITHMS for a in algs)
    ):
        hint = E005_HINT.format(", ".join(sorted(ALLOWED_ALGORITHMS)))
        return [Error(E005, hint=hint, id="secure_sso.E005")]
    return []


@register(Tags.security)
def check_token_endpoint_auth(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    if _user_value("TOKEN_ENDPOINT_AUTH_METHOD") not in TOKEN_ENDPOINT_AUTH_METHODS:
        return [Error(E006, hint=E006_HINT, id="secure_sso.E006")]
    return []


@register()
def check_scopes(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    scopes = _user_value("SCOPES")
    if isinstance(scopes, str):
        scopes = scopes.split()
    if not isinstance(scopes, list | tuple) or not all(
        isinstance(s, str) and s and " " not in s for s in scopes
    ):
        return [Error(E007, hint=E007_HINT, id="secure_sso.E007")]
    return []


@register(Tags.security)
def check_backend(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    if BACKEND not in settings.AUTHENTICATION_BACKENDS:
        return [Error(E008, hint=E008_HINT, id="secure_sso.E008")]
    return []


@register(Tags.security)
def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    needed = {
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    }
    if not needed <= set(settings.MIDDLEWARE):
        return [Error(E013, hint=E013_HINT, id="secure_sso.E013")]
    return []


@register()
def check_numbers(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    errors: list[Any] = []
    for key in ("HTTP_TIMEOUT", "METADATA_TTL", "JWKS_TTL", "PENDING_LOGIN_TTL",
                "MAX_PENDING_LOGINS", "ID_TOKEN_MAX_AGE"):
        value = _user_value(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            errors.append(Error(E009.format(key=key), hint=E009_HINT, id="secure_sso.E009"))
    for key in ("CLOCK_SKEW", "JWKS_MIN_REFRESH_INTERVAL"):
        value = _user_value(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            errors.append(Error(E009.format(key=key), hint=E009_HINT, id="secure_sso.E009"))
    return errors


@register()
def check_groups(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    errors: list[Any] = []
    group_map = _user_value("GROUP_MAP")
    if not isinstance(group_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in group_map.items()
    ):
        errors.append(Error(E012, hint=E012_HINT, id="secure_sso.E012"))
    for key in ("STAFF_GROUPS", "SUPERUSER_GROUPS"):
        value = _user_value(key)
        if value is not None and (
            not isinstance(value, list | tuple | set | frozenset)
            or not all(isinstance(g, str) and g for g in value)
        ):
            errors.append(Error(E014.format(key=key), hint=E014_HINT, id="secure_sso.E014"))
    claim = _user_value("GROUPS_CLAIM")
    if claim is not None and (not isinstance(claim, str) or not claim):
        errors.append(Error(E015, hint=E015_HINT, id="secure_sso.E015"))
    rules = group_map or _user_value("STAFF_GROUPS") or _user_value("SUPERUSER_GROUPS")
    if rules and not _user_value("GROUPS_CLAIM"):
        errors.append(Warning(W002, hint=W002_HINT, id="secure_sso.W002"))
    return errors


@register()
def check_unknown_keys(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    unknown = sso_settings.unknown_keys
    if unknown:
        return [Warning(W001.format(keys=", ".join(unknown)), hint=W001_HINT, id="secure_sso.W001")]
    return []


@register(Tags.security)
def check_session_engine(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.signed_cookies":
        return [Warning(W003, hint=W003_HINT, id="secure_sso.W003")]
    return []


@register(Tags.security, deploy=True)
def check_development_mode(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    if _user_value("DEVELOPMENT_MODE"):
        return [Error(E010, hint=E010_HINT, id="secure_sso.E010")]
    return []
