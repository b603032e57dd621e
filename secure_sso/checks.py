"""System checks: misconfiguration stops ``manage.py check`` (and ``runserver``) with a fix.

Every id is listed in README's "System checks" table with its fix.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.utils.module_loading import import_string

from secure_sso.conf import (
    ALLOWED_ALGORITHMS,
    DEFAULTS,
    TOKEN_ENDPOINT_AUTH_METHODS,
    is_loopback_host,
    is_loopback_url,
    sso_settings,
)
from secure_sso.csp import package_policy, provider_origin

BACKEND = "secure_sso.backends.SSOBackend"
TRANSPORT_MIDDLEWARE = "secure_sso.middleware.TransportMiddleware"
SESSION_GUARD_MIDDLEWARE = "secure_sso.middleware.SessionGuardMiddleware"
CSP_MIDDLEWARE = "secure_sso.middleware.CSPMiddleware"
DJANGO_CSP_MIDDLEWARE = "csp.middleware.CSPMiddleware"
SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
CSRF_MIDDLEWARE = "django.middleware.csrf.CsrfViewMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
ONE_YEAR = 31_536_000
#: RFC 6265 cookie-name = RFC 7230 token.
COOKIE_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

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
W013 = (
    "SECURE_SSO['{key}'] is {ours!r} but Django's SecurityMiddleware sends {django_setting} = "
    "{theirs!r} first, so the package's value never reaches the browser."
)
W013_HINT = "Set {django_setting} = {ours!r} (or to None to let the package send it)."
W001 = "SECURE_SSO has unknown keys: {keys}."
W001_HINT = "Check the spelling against README's settings reference; unknown keys are ignored."
W002 = "SECURE_SSO group rules are set but SECURE_SSO['GROUPS_CLAIM'] is not."
W002_HINT = "Set GROUPS_CLAIM to the claim that carries groups, e.g. 'groups'."
E016 = (
    "secure_sso.middleware.TransportMiddleware is {problem}: cookies set by the middleware "
    "listed before it leave without its Secure/HttpOnly/SameSite flags."
)
E016_HINT = (
    f"Put '{TRANSPORT_MIDDLEWARE}' first in MIDDLEWARE, at least before SessionMiddleware "
    "and CsrfViewMiddleware."
)
E017 = (
    "secure_sso.middleware.SessionGuardMiddleware is {problem}: sessions are not bound to "
    "the browser and never time out."
)
E017_HINT = (
    f"Put '{SESSION_GUARD_MIDDLEWARE}' in MIDDLEWARE right after "
    "'django.contrib.auth.middleware.AuthenticationMiddleware'."
)
E018 = (
    "SECURE_SSO['DEVELOPMENT_MODE'] and DEBUG are on while ALLOWED_HOSTS admits "
    "non-loopback hosts ({hosts}): a development configuration is reachable from the network."
)
E018_HINT = (
    "Keep DEVELOPMENT_MODE and DEBUG for loopback only (ALLOWED_HOSTS = ['127.0.0.1', "
    "'localhost']); production settings turn both off."
)
E019 = "{setting} = {name!r} has the {prefix} prefix but {problems}: browsers drop the cookie."
E019_HINT = (
    "A '__Host-' cookie needs {prefix_setting}_SECURE = True, no {prefix_setting}_DOMAIN and "
    "{prefix_setting}_PATH = '/'; a '__Secure-' cookie needs {prefix_setting}_SECURE = True. "
    "Fix those settings or drop the prefix."
)
E020 = "SECURE_SSO['COOKIE_SAMESITE'] must be 'Lax' or 'Strict'."
E020_HINT = (
    "Use 'Lax' (default). 'None' would send every cookie on cross-site requests and is refused."
)
E021 = "SECURE_SSO['JS_READABLE_COOKIES'] must be a list of cookie names."
E021_HINT = "E.g. ['csrftoken']; a bare string would be read as a set of single characters."
E022 = "SECURE_SSO['JS_READABLE_COOKIES'] lists {names}: script could read (and leak) it."
E022_HINT = (
    "Remove the session and binding cookies from JS_READABLE_COOKIES; they must stay HttpOnly."
)
E023 = "SECURE_SSO['{key}'] must be a non-negative integer (seconds)."
E023_HINT = "Use a whole number of seconds; 0 disables it (see README's settings reference)."
E024 = "SECURE_SSO['BINDING_COOKIE_NAME'] = {name!r} is not a usable cookie name."
E024_HINT = (
    "Use letters, digits and !#$%&'*+-.^_`|~ only, without a '__Host-'/'__Secure-' prefix "
    "(added on https), and different from SESSION_COOKIE_NAME and CSRF_COOKIE_NAME; "
    "e.g. 'secure_sso_binding'."
)
W004 = "No Content-Security-Policy is sent."
W004_HINT = (
    f"Add '{CSP_MIDDLEWARE}' to MIDDLEWARE: it sends the package's strict policy (or your "
    "CONTENT_SECURITY_POLICY). django-csp's own middleware sends nothing without "
    "CONTENT_SECURITY_POLICY."
)
W005 = (
    "The Content-Security-Policy's form-action does not allow the provider ({origin}): "
    "the browser would block sign-out's redirect to the provider."
)
W005_HINT = (
    "Add {origin!r} to CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action'], or start from "
    "secure_sso.csp.package_policy()."
)
W006 = "The Content-Security-Policy has no frame-ancestors directive: pages may be framed."
W006_HINT = (
    "Add 'frame-ancestors': [NONE] (from csp.constants) to the policy's DIRECTIVES, or start "
    "from secure_sso.csp.package_policy()."
)
W007 = "SECURE_SSO['HTTPS_REDIRECT'] is off: plain-http requests are served."
W007_HINT = (
    "Remove HTTPS_REDIRECT = False. Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER "
    "so requests that arrived over https are recognised."
)
W008 = "SECURE_SSO['HSTS_SECONDS'] is {seconds}: less than a year of Strict-Transport-Security."
W008_HINT = f"Use at least {ONE_YEAR} (one year, the default)."
W009 = "SECURE_SSO['SESSION_BINDING'] is off: a stolen session cookie works in any browser."
W009_HINT = "Remove SESSION_BINDING = False."
W010 = (
    "The session cookie is SameSite=Strict: browsers do not send it on the provider's redirect "
    "back, so the callback cannot find the pending sign-in."
)
W010_HINT = (
    "Use SESSION_COOKIE_SAMESITE = 'Lax' (Django's default); CSRF protection still applies."
)
W011 = (
    "SECURE_SSO['SESSION_IDLE_TIMEOUT'] ({idle}) is longer than "
    "SECURE_SSO['SESSION_ABSOLUTE_TIMEOUT'] ({absolute}): the idle limit never applies."
)
W011_HINT = "Make the idle timeout shorter than the absolute one (defaults: 1800 and 43200)."
W012 = "SECURE_SSO['{key}'] is 0: sessions never end on that limit."
W012_HINT = "Remove the 0; the defaults are 1800 (idle) and 43200 (absolute) seconds."


def _user_value(key: str) -> Any:
    return sso_settings.user_settings.get(key, DEFAULTS[key])


def _middleware_index(path: str) -> int | None:
    """Position in MIDDLEWARE of ``path`` or of a subclass of it, ``None`` if absent."""
    try:
        wanted = import_string(path)
    except ImportError:
        wanted = None
    for index, entry in enumerate(settings.MIDDLEWARE):
        if entry == path:
            return index
        if wanted is None:
            continue
        try:
            candidate = import_string(entry)
        except ImportError:
            continue
        if isinstance(candidate, type) and issubclass(candidate, wanted):
            return index
    return None


def _is_non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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


@register(Tags.security, deploy=True)
def check_development_mode(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    if _user_value("DEVELOPMENT_MODE"):
        return [Error(E010, hint=E010_HINT, id="secure_sso.E010")]
    return []


@register(Tags.security)
def check_transport_middleware(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    transport = _middleware_index(TRANSPORT_MIDDLEWARE)
    if transport is None:
        problem = "not in MIDDLEWARE"
    else:
        later = [(_middleware_index(p), p) for p in (SESSION_MIDDLEWARE, CSRF_MIDDLEWARE)]
        before = [p.rsplit(".", 1)[1] for i, p in later if i is not None and i < transport]
        if not before:
            return []
        problem = f"listed after {' and '.join(before)}"
    return [Error(E016.format(problem=problem), hint=E016_HINT, id="secure_sso.E016")]


@register(Tags.security)
def check_session_guard_middleware(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    guard = _middleware_index(SESSION_GUARD_MIDDLEWARE)
    if guard is None:
        problem = "not in MIDDLEWARE"
    else:
        auth = _middleware_index(AUTH_MIDDLEWARE)
        if auth is None or auth < guard:
            return []  # a missing AuthenticationMiddleware is E013
        problem = "listed before AuthenticationMiddleware (it would see no user)"
    return [Error(E017.format(problem=problem), hint=E017_HINT, id="secure_sso.E017")]


def _effective_csp() -> dict[str, Any] | None:
    """The directives the installed CSP middleware sends; ``None`` when it sends no policy."""
    project = getattr(settings, "CONTENT_SECURITY_POLICY", None)
    if project:
        directives = project.get("DIRECTIVES", {}) if isinstance(project, dict) else {}
        return dict(directives) if isinstance(directives, dict) else {}
    if _middleware_index(CSP_MIDDLEWARE) is not None:
        return package_policy()
    return None


def _sources(value: Any) -> list[str]:
    if value is None or value is False:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list | tuple | set | frozenset):
        return [v for v in value if isinstance(v, str)]
    return []


_HOST_SOURCE = re.compile(
    r"(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<host>\*|(?:\*\.)?[^:/*]+)"
    r"(?::(?P<port>[0-9]+|\*))?(?:/.*)?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _source_allows(source: str, origin: str) -> bool:
    """Whether a CSP source expression admits ``origin`` (paths are ignored after redirects)."""
    parts = urlsplit(origin)
    scheme, host = parts.scheme, (parts.hostname or "")
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    source = source.lower()
    if source == "*":
        return scheme in _DEFAULT_PORTS
    if source.endswith(":") and "/" not in source:  # scheme-source; http: also admits https
        return source[:-1] == scheme or (source == "http:" and scheme == "https")
    match = _HOST_SOURCE.fullmatch(source)
    if not match or source.startswith("'"):
        return False
    src_scheme = match["scheme"]
    if src_scheme and not (src_scheme == scheme or (src_scheme == "http" and scheme == "https")):
        return False
    src_host = match["host"]
    if src_host != "*" and not (
        src_host == host
        or (src_host.startswith("*.") and host.endswith(src_host[1:]))
    ):
        return False
    src_port = match["port"]
    if src_port == "*":
        return True
    if src_port:
        return int(src_port) == port
    return port == _DEFAULT_PORTS.get(scheme)


@register(Tags.security)
def check_csp(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    installed = (
        _middleware_index(CSP_MIDDLEWARE) is not None
        or _middleware_index(DJANGO_CSP_MIDDLEWARE) is not None
    )
    policy = _effective_csp() if installed else None
    if policy is None:
        return [Warning(W004, hint=W004_HINT, id="secure_sso.W004")]
    warnings: list[Any] = []
    issuer = _user_value("ISSUER")
    origin = provider_origin(issuer) if _is_https_or_dev(issuer) else None
    form_action = policy.get("form-action")
    if (
        origin
        and _user_value("PROVIDER_LOGOUT")
        and form_action not in (None, False)
        and not any(_source_allows(s, origin) for s in _sources(form_action))
    ):
        warnings.append(Warning(W005.format(origin=origin), hint=W005_HINT.format(origin=origin),
                                id="secure_sso.W005"))
    if not _sources(policy.get("frame-ancestors")):
        warnings.append(Warning(W006, hint=W006_HINT, id="secure_sso.W006"))
    return warnings


@register(Tags.security)
def check_development_exposure(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    if not (_user_value("DEVELOPMENT_MODE") and settings.DEBUG):
        return []
    exposed = [
        host
        for host in settings.ALLOWED_HOSTS
        if not (isinstance(host, str) and is_loopback_host(host.strip()))
    ]
    if not exposed:
        return []
    hosts = ", ".join(repr(h) for h in exposed)
    return [Error(E018.format(hosts=hosts), hint=E018_HINT, id="secure_sso.E018")]


@register(Tags.security)
def check_cookie_prefixes(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    errors: list[Any] = []
    cookies = ["SESSION_COOKIE"] + ([] if settings.CSRF_USE_SESSIONS else ["CSRF_COOKIE"])
    for prefix_setting in cookies:
        name = getattr(settings, f"{prefix_setting}_NAME")
        if not isinstance(name, str):
            continue
        problems: list[str] = []
        if name.lower().startswith("__host-"):
            prefix = "__Host-"
            if getattr(settings, f"{prefix_setting}_DOMAIN"):
                problems.append(f"{prefix_setting}_DOMAIN is set")
            if getattr(settings, f"{prefix_setting}_PATH") != "/":
                problems.append(f"{prefix_setting}_PATH is not '/'")
        elif name.lower().startswith("__secure-"):
            prefix = "__Secure-"
        else:
            continue
        if not getattr(settings, f"{prefix_setting}_SECURE"):
            problems.append(f"{prefix_setting}_SECURE is False")
        if problems:
            errors.append(Error(
                E019.format(setting=f"{prefix_setting}_NAME", name=name, prefix=prefix,
                            problems=", ".join(problems)),
                hint=E019_HINT.format(prefix_setting=prefix_setting),
                id="secure_sso.E019",
            ))
    return errors


@register(Tags.security)
def check_samesite(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    messages: list[Any] = []
    fallback = _user_value("COOKIE_SAMESITE")
    if fallback not in ("Lax", "Strict"):
        messages.append(Error(E020, hint=E020_HINT, id="secure_sso.E020"))
    # Django sets the session cookie's SameSite itself; the middleware's fallback applies
    # only when SESSION_COOKIE_SAMESITE is False/None.
    session = settings.SESSION_COOKIE_SAMESITE or fallback
    if isinstance(session, str) and session.lower() == "strict":
        messages.append(Warning(W010, hint=W010_HINT, id="secure_sso.W010"))
    return messages


@register(Tags.security)
def check_js_readable_cookies(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    names = _user_value("JS_READABLE_COOKIES")
    if not isinstance(names, list | tuple | set | frozenset) or not all(
        isinstance(n, str) and n for n in names
    ):
        return [Error(E021, hint=E021_HINT, id="secure_sso.E021")]
    binding = _user_value("BINDING_COOKIE_NAME")
    protected = {settings.SESSION_COOKIE_NAME, binding, f"__Host-{binding}"}
    exposed = sorted(set(names) & protected)
    if exposed:
        listed = ", ".join(repr(n) for n in exposed)
        return [Error(E022.format(names=listed), hint=E022_HINT, id="secure_sso.E022")]
    return []


@register(Tags.security)
def check_binding_cookie_name(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    name = _user_value("BINDING_COOKIE_NAME")
    if (
        isinstance(name, str)
        and COOKIE_TOKEN.fullmatch(name)
        and not name.lower().startswith(("__host-", "__secure-"))
        and name not in {settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME}
    ):
        return []
    return [Error(E024.format(name=name), hint=E024_HINT, id="secure_sso.E024")]


@register(Tags.security)
def check_hardening_numbers(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    messages: list[Any] = []
    for key in ("HSTS_SECONDS", "SESSION_IDLE_TIMEOUT", "SESSION_ABSOLUTE_TIMEOUT"):
        if not _is_non_negative_int(_user_value(key)):
            messages.append(Error(E023.format(key=key), hint=E023_HINT, id="secure_sso.E023"))
    idle, absolute = _user_value("SESSION_IDLE_TIMEOUT"), _user_value("SESSION_ABSOLUTE_TIMEOUT")
    if _is_non_negative_int(idle) and _is_non_negative_int(absolute) and 0 < absolute < idle:
        messages.append(Warning(W011.format(idle=idle, absolute=absolute), hint=W011_HINT,
                                id="secure_sso.W011"))
    return messages


@register(Tags.security, deploy=True)
def check_transport_deploy(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    messages: list[Any] = []
    if not _user_value("HTTPS_REDIRECT"):
        messages.append(Warning(W007, hint=W007_HINT, id="secure_sso.W007"))
    seconds = _user_value("HSTS_SECONDS")
    if _is_non_negative_int(seconds) and seconds < ONE_YEAR:
        messages.append(Warning(W008.format(seconds=seconds), hint=W008_HINT, id="secure_sso.W008"))
    return messages


@register(Tags.security, deploy=True)
def check_sessions_deploy(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    messages: list[Any] = []
    if not _user_value("SESSION_BINDING"):
        messages.append(Warning(W009, hint=W009_HINT, id="secure_sso.W009"))
    for key in ("SESSION_IDLE_TIMEOUT", "SESSION_ABSOLUTE_TIMEOUT"):
        if _user_value(key) == 0 and not isinstance(_user_value(key), bool):
            messages.append(Warning(W012.format(key=key), hint=W012_HINT, id="secure_sso.W012"))
    return messages


@register(Tags.security)
def check_header_overlap(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Django's SecurityMiddleware runs inside TransportMiddleware and sets these first."""
    if "django.middleware.security.SecurityMiddleware" not in settings.MIDDLEWARE:
        return []
    warnings = []
    for key, django_setting in (
        ("REFERRER_POLICY", "SECURE_REFERRER_POLICY"),
        ("CROSS_ORIGIN_OPENER_POLICY", "SECURE_CROSS_ORIGIN_OPENER_POLICY"),
    ):
        ours = _user_value(key)
        theirs = getattr(settings, django_setting, None)
        if ours and theirs and ours != theirs:
            fields = {"key": key, "ours": ours, "theirs": theirs, "django_setting": django_setting}
            message, hint = W013.format(**fields), W013_HINT.format(**fields)
            warnings.append(Warning(message, hint=hint, id="secure_sso.W013"))
    return warnings


E025 = "SECURE_SSO['STEP_UP_METHOD'] must be 'totp' or 'provider'."
E025_HINT = "'totp' (django-otp, default) or 'provider' (acr/amr from the identity provider)."
E026 = "SECURE_SSO['STEP_UP_WITHOUT_DEVICE'] must be 'enroll' or 'deny'."
E026_HINT = "'enroll' (default) sends users without a device to set one up; 'deny' refuses."
E027 = "Provider step-up can never succeed: STEP_UP_ACR_VALUES and STEP_UP_AMR are both empty."
E027_HINT = "Set STEP_UP_AMR (default ['mfa', 'otp']) or the acr values your provider returns."
E028 = "TOTP step-up needs django-otp: '{app}' is not in INSTALLED_APPS."
E028_HINT = "Add 'django_otp' and 'django_otp.plugins.otp_totp' to INSTALLED_APPS and migrate."
E029 = "StepUpMiddleware must come after SessionGuardMiddleware (and AuthenticationMiddleware)."
E029_HINT = "Place 'secure_sso.middleware.StepUpMiddleware' right after SessionGuardMiddleware."
E030 = "SECURE_SSO['STEP_UP_MAX_AGE'] must be a positive number of seconds."
E030_HINT = "The default is 300 (five minutes)."
W014 = "SECURE_SSO['{key}'] asks for step-up but StepUpMiddleware is not in MIDDLEWARE."
W014_HINT = "Add 'secure_sso.middleware.StepUpMiddleware' after SessionGuardMiddleware."


@register(Tags.security)
def check_step_up(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Step-up settings, its middleware's place, and django-otp for the TOTP method."""
    from django.apps import apps

    errors: list[Any] = []
    method = _user_value("STEP_UP_METHOD")
    if method not in ("totp", "provider"):
        errors.append(Error(E025, hint=E025_HINT, id="secure_sso.E025"))
    if _user_value("STEP_UP_WITHOUT_DEVICE") not in ("enroll", "deny"):
        errors.append(Error(E026, hint=E026_HINT, id="secure_sso.E026"))
    proof = _user_value("STEP_UP_ACR_VALUES") or _user_value("STEP_UP_AMR")
    if method == "provider" and not proof:
        errors.append(Error(E027, hint=E027_HINT, id="secure_sso.E027"))
    if method == "totp":
        for app in ("django_otp", "django_otp.plugins.otp_totp"):
            if not apps.is_installed(app):
                errors.append(Error(E028.format(app=app), hint=E028_HINT, id="secure_sso.E028"))
    max_age = _user_value("STEP_UP_MAX_AGE")
    if isinstance(max_age, bool) or not isinstance(max_age, int | float) or max_age <= 0:
        errors.append(Error(E030, hint=E030_HINT, id="secure_sso.E030"))
    middleware = list(settings.MIDDLEWARE)
    step_up = "secure_sso.middleware.StepUpMiddleware"
    guard = "secure_sso.middleware.SessionGuardMiddleware"
    if step_up in middleware and (
        guard not in middleware or middleware.index(step_up) < middleware.index(guard)
    ):
        errors.append(Error(E029, hint=E029_HINT, id="secure_sso.E029"))
    if step_up not in middleware:
        for key in ("STEP_UP_URLS", "STEP_UP_ADMIN"):
            if _user_value(key):
                errors.append(Warning(W014.format(key=key), hint=W014_HINT, id="secure_sso.W014"))
    return errors


SIGNED_COOKIES_ENGINE = "django.contrib.sessions.backends.signed_cookies"
CACHE_SESSION_ENGINE = "django.contrib.sessions.backends.cache"
UNSHARED_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": "keeps values in one process",
    "django.core.cache.backends.filebased.FileBasedCache": "does not add atomically",
}
DUMMY_CACHE = "django.core.cache.backends.dummy.DummyCache"

E031 = "SESSION_ENGINE is signed_cookies: sessions live in the browser."
E031_HINT = (
    "Use a server-side engine ('django.contrib.sessions.backends.db' (default), 'cached_db', "
    "'cache' or 'file'): a cookie session can neither be ended by back-channel logout nor "
    "keep the provider's tokens out of the browser."
)
E032 = "SECURE_SSO['TOKEN_ENCRYPTION_KEYS'] must be a list of secrets of at least 32 characters."
E032_HINT = (
    "E.g. [os.environ['SSO_TOKEN_KEY']] with a value from `python -c \"import secrets; "
    "print(secrets.token_urlsafe(48))\"`; put a new key first and keep the old one after it "
    "to rotate. Leave it empty to derive the key from SECRET_KEY."
)
E033 = "SECURE_SSO['STATE_STORE'] must be 'database' or 'cache'."
E033_HINT = (
    "'database' (default) works everywhere; 'cache' needs a shared cache (Redis, Memcached)."
)
E034 = "SECURE_SSO['STATE_CACHE_ALIAS'] {alias!r} is not in CACHES."
E034_HINT = "Name a cache from CACHES, or use STATE_STORE = 'database'."
E035 = "The state store's cache {alias!r} is a DummyCache: single-use values would never be kept."
E035_HINT = "Use a real shared cache (Redis, Memcached, DatabaseCache) or STATE_STORE='database'."
E036 = "The state store's cache {alias!r} {why}: replays are not refused across workers."
E036_HINT = (
    "In production use RedisCache, PyMemcacheCache or DatabaseCache, or "
    "STATE_STORE = 'database' (default)."
)
E037 = "SECURE_SSO['{key}'] must be a number of seconds (>= 0)."
E037_HINT = "REVALIDATE_AFTER: 0 (off) or e.g. 900; REFRESH_BEFORE_EXPIRY: e.g. 60."
E038 = "SECURE_SSO['POST_LOGOUT_REDIRECT_URI'] must be an absolute https URL."
E038_HINT = (
    "Register https://YOUR_SITE/sso/logout/complete/ at the provider and set it here, or "
    "leave it None to build it from the request (this site's own logout-complete URL)."
)
E039 = "SECURE_SSO['LOGOUT_TOKEN_MAX_AGE'] must be a positive number of seconds."
E039_HINT = "The default is 120: logout tokens older than that (plus CLOCK_SKEW) are refused."
W015 = (
    "SESSION_ENGINE 'cache' with back-channel logout: a request in flight may write an "
    "ended session back."
)
W015_HINT = (
    "Prefer 'cached_db' or 'db': their save() refuses to recreate a deleted session, so an "
    "ended session stays ended."
)


def _seconds(value: Any, *, positive: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value > 0 if positive else value >= 0


@register(Tags.security)
def check_single_sign_out(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Session engine, token keys, the shared store and the logout settings."""
    errors: list[Any] = []
    engine = settings.SESSION_ENGINE
    if engine == SIGNED_COOKIES_ENGINE:
        errors.append(Error(E031, hint=E031_HINT, id="secure_sso.E031"))
    if engine == CACHE_SESSION_ENGINE and _user_value("BACKCHANNEL_LOGOUT"):
        errors.append(Warning(W015, hint=W015_HINT, id="secure_sso.W015"))
    keys = _user_value("TOKEN_ENCRYPTION_KEYS")
    if not isinstance(keys, list | tuple) or not all(
        isinstance(k, str) and len(k) >= 32 for k in keys
    ):
        errors.append(Error(E032, hint=E032_HINT, id="secure_sso.E032"))
    store = _user_value("STATE_STORE")
    if store not in ("database", "cache"):
        errors.append(Error(E033, hint=E033_HINT, id="secure_sso.E033"))
    elif store == "cache":
        alias = _user_value("STATE_CACHE_ALIAS")
        caches = getattr(settings, "CACHES", {}) or {}
        if alias not in caches:
            errors.append(Error(E034.format(alias=alias), hint=E034_HINT, id="secure_sso.E034"))
        elif caches[alias].get("BACKEND") == DUMMY_CACHE:
            errors.append(Error(E035.format(alias=alias), hint=E035_HINT, id="secure_sso.E035"))
    for key, positive in (("REVALIDATE_AFTER", False), ("REFRESH_BEFORE_EXPIRY", False)):
        if not _seconds(_user_value(key), positive=positive):
            errors.append(Error(E037.format(key=key), hint=E037_HINT, id="secure_sso.E037"))
    if not _seconds(_user_value("LOGOUT_TOKEN_MAX_AGE"), positive=True):
        errors.append(Error(E039, hint=E039_HINT, id="secure_sso.E039"))
    uri = _user_value("POST_LOGOUT_REDIRECT_URI")
    if uri not in (None, ""):
        try:
            parts = urlsplit(uri) if isinstance(uri, str) else None
        except ValueError:  # "https://[::1": a malformed URL is E038, not a crashed check
            parts = None
        if parts is None or not parts.hostname or not (
            parts.scheme == "https" or (parts.scheme == "http" and sso_settings.allows_http(uri))
        ):
            errors.append(Error(E038, hint=E038_HINT, id="secure_sso.E038"))
    return errors


@register(Tags.security, deploy=True)
def check_state_store_deploy(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """A per-process or non-atomic cache cannot make values single-use across workers."""
    if _user_value("STATE_STORE") != "cache":
        return []
    alias = _user_value("STATE_CACHE_ALIAS")
    backend = (getattr(settings, "CACHES", {}) or {}).get(alias, {}).get("BACKEND")
    why = UNSHARED_CACHES.get(backend)
    if why:
        return [Error(E036.format(alias=alias, why=why), hint=E036_HINT, id="secure_sso.E036")]
    return []
