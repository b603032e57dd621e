"""System checks: each misconfiguration yields its id, the test settings yield none."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings

from secure_sso import checks

BASE = dict(django_settings.SECURE_SSO)

ALL_CHECKS = [
    checks.check_provider,
    checks.check_algorithms,
    checks.check_token_endpoint_auth,
    checks.check_scopes,
    checks.check_backend,
    checks.check_middleware,
    checks.check_numbers,
    checks.check_groups,
    checks.check_unknown_keys,
    checks.check_single_sign_out,
]


def ids(*check_functions: Any) -> list[str]:
    """The ids every given check (default: all non-deploy checks) reports now."""
    found: list[str] = []
    for check in check_functions or ALL_CHECKS:
        found.extend(message.id for message in check(None))
    return found


def configure(settings: Any, **values: Any) -> None:
    """Replace SECURE_SSO with the test settings plus ``values`` (DROP removes a key)."""
    sso = {**BASE}
    for key, value in values.items():
        if value is DROP:
            sso.pop(key, None)
        else:
            sso[key] = value
    settings.SECURE_SSO = sso


DROP = object()


class TestCleanConfiguration:
    def test_test_settings_pass(self) -> None:
        """The suite's own settings produce no error or warning."""
        assert ids() == []

    def test_https_production_settings_pass_deploy(self, settings: Any) -> None:
        """A production-like https configuration passes every check, deploy included."""
        configure(settings, ISSUER="https://op.example/", DEVELOPMENT_MODE=DROP,
                  REDIRECT_URI="https://site.example/sso/callback/",
                  GROUPS_CLAIM="groups", GROUP_MAP={"admins": "Administrators"},
                  STAFF_GROUPS=["admins"], SUPERUSER_GROUPS=["root"])
        assert ids(*ALL_CHECKS, checks.check_development_mode) == []


class TestProvider:
    @pytest.mark.parametrize("issuer", [DROP, "", None])
    def test_e001_issuer_missing(self, settings: Any, issuer: Any) -> None:
        """A missing or empty ISSUER is E001 (and not also E002)."""
        configure(settings, ISSUER=issuer)
        assert ids(checks.check_provider) == ["secure_sso.E001"]

    @pytest.mark.parametrize("issuer", [
        "http://op.example", "https://op.example/?tenant=1", "https://op.example/#x",
        "op.example", "https://", "ftp://op.example", 42, "http://[::1",
    ])
    def test_e002_issuer_not_https(self, settings: Any, issuer: Any) -> None:
        """An ISSUER that is not a plain https URL is E002."""
        configure(settings, ISSUER=issuer)
        assert ids(checks.check_provider) == ["secure_sso.E002"]

    def test_e002_loopback_http_needs_development_mode(self, settings: Any) -> None:
        """Loopback http is E002 without DEVELOPMENT_MODE and accepted with it."""
        configure(settings, ISSUER="http://127.0.0.1:8000", DEVELOPMENT_MODE=False)
        assert ids(checks.check_provider) == ["secure_sso.E002"]
        configure(settings, ISSUER="http://127.0.0.1:8000", DEVELOPMENT_MODE=True)
        assert ids(checks.check_provider) == []

    def test_e002_non_loopback_http_even_in_development(self, settings: Any) -> None:
        """DEVELOPMENT_MODE does not allow http to another host."""
        configure(settings, ISSUER="http://op.example", DEVELOPMENT_MODE=True)
        assert ids(checks.check_provider) == ["secure_sso.E002"]

    @pytest.mark.parametrize("client_id", [DROP, "", None])
    def test_e003_client_id_missing(self, settings: Any, client_id: Any) -> None:
        """A missing CLIENT_ID is E003."""
        configure(settings, CLIENT_ID=client_id)
        assert ids(checks.check_provider) == ["secure_sso.E003"]

    @pytest.mark.parametrize("secret", [DROP, "", None])
    def test_e004_client_secret_missing(self, settings: Any, secret: Any) -> None:
        """A missing CLIENT_SECRET is E004."""
        configure(settings, CLIENT_SECRET=secret)
        assert ids(checks.check_provider) == ["secure_sso.E004"]

    @pytest.mark.parametrize("uri", ["http://site.example/cb/", "site.example/cb/",
                                     "https://site.example/cb/?x=1", 5])
    def test_e011_redirect_uri_not_https(self, settings: Any, uri: Any) -> None:
        """A REDIRECT_URI that is not https is E011."""
        configure(settings, REDIRECT_URI=uri)
        assert ids(checks.check_provider) == ["secure_sso.E011"]

    def test_e011_absent_for_https_or_unset(self, settings: Any) -> None:
        """An https REDIRECT_URI, or none, is fine."""
        configure(settings, REDIRECT_URI="https://site.example/sso/callback/")
        assert ids(checks.check_provider) == []
        configure(settings, REDIRECT_URI=None)
        assert ids(checks.check_provider) == []


class TestAlgorithms:
    @pytest.mark.parametrize("algs", [[], ["none"], ["RS256", "none"], ["HS256"],
                                      ["RS256", "HS512"], ["rs256"], "RS256", None, ["XYZ"]])
    def test_e005_bad_algorithms(self, settings: Any, algs: Any) -> None:
        """Empty, symmetric, 'none', unknown or non-list algorithm pins are E005."""
        configure(settings, ID_TOKEN_ALGORITHMS=algs)
        assert ids(checks.check_algorithms) == ["secure_sso.E005"]

    @pytest.mark.parametrize("algs", [["RS256"], ["ES256", "PS256"], ("EdDSA",)])
    def test_e005_absent_for_asymmetric(self, settings: Any, algs: Any) -> None:
        """Asymmetric algorithms pass."""
        configure(settings, ID_TOKEN_ALGORITHMS=algs)
        assert ids(checks.check_algorithms) == []


class TestTokenEndpointAuth:
    @pytest.mark.parametrize("method", ["none", "private_key_jwt", "", None, "CLIENT_SECRET_BASIC"])
    def test_e006_unsupported(self, settings: Any, method: Any) -> None:
        """Auth methods other than client_secret_basic/post are E006."""
        configure(settings, TOKEN_ENDPOINT_AUTH_METHOD=method)
        assert ids(checks.check_token_endpoint_auth) == ["secure_sso.E006"]

    @pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
    def test_e006_absent_for_supported(self, settings: Any, method: str) -> None:
        """The two supported methods pass."""
        configure(settings, TOKEN_ENDPOINT_AUTH_METHOD=method)
        assert ids(checks.check_token_endpoint_auth) == []


class TestScopes:
    @pytest.mark.parametrize("scopes", [None, 5, ["openid email"], ["openid", ""], ["openid", 3],
                                        {"openid": True}])
    def test_e007_bad_scopes(self, settings: Any, scopes: Any) -> None:
        """Scopes that are not a list of single scope strings are E007."""
        configure(settings, SCOPES=scopes)
        assert ids(checks.check_scopes) == ["secure_sso.E007"]

    @pytest.mark.parametrize("scopes", [["openid", "email"], "openid email", ()])
    def test_e007_absent_for_good_scopes(self, settings: Any, scopes: Any) -> None:
        """A list, tuple or space-separated string passes."""
        configure(settings, SCOPES=scopes)
        assert ids(checks.check_scopes) == []


class TestBackendAndMiddleware:
    def test_e008_backend_missing(self, settings: Any) -> None:
        """Without the SSO backend, E008."""
        settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
        assert ids(checks.check_backend) == ["secure_sso.E008"]

    @pytest.mark.parametrize("missing", [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ])
    def test_e013_middleware_missing(self, settings: Any, missing: str) -> None:
        """Without session or authentication middleware, E013."""
        settings.MIDDLEWARE = [m for m in django_settings.MIDDLEWARE if m != missing]
        assert ids(checks.check_middleware) == ["secure_sso.E013"]


class TestNumbers:
    @pytest.mark.parametrize("key", ["HTTP_TIMEOUT", "METADATA_TTL", "JWKS_TTL",
                                     "PENDING_LOGIN_TTL", "MAX_PENDING_LOGINS", "ID_TOKEN_MAX_AGE"])
    @pytest.mark.parametrize("value", [0, -1, "5", None, True])
    def test_e009_positive_numbers(self, settings: Any, key: str, value: Any) -> None:
        """Timeouts, TTLs and limits must be positive numbers."""
        configure(settings, **{key: value})
        assert ids(checks.check_numbers) == ["secure_sso.E009"]

    @pytest.mark.parametrize("key", ["CLOCK_SKEW", "JWKS_MIN_REFRESH_INTERVAL"])
    @pytest.mark.parametrize("value", [-1, "60", None, False])
    def test_e009_non_negative_numbers(self, settings: Any, key: str, value: Any) -> None:
        """Clock skew and refresh interval must be non-negative numbers."""
        configure(settings, **{key: value})
        assert ids(checks.check_numbers) == ["secure_sso.E009"]

    def test_e009_zero_allowed_where_non_negative(self, settings: Any) -> None:
        """Zero clock skew and refresh interval are accepted."""
        configure(settings, CLOCK_SKEW=0, JWKS_MIN_REFRESH_INTERVAL=0)
        assert ids(checks.check_numbers) == []


class TestDevelopmentMode:
    def test_e010_reported_by_deploy_check(self, settings: Any) -> None:
        """DEVELOPMENT_MODE on (as in the test settings) is E010 under --deploy."""
        configure(settings, DEVELOPMENT_MODE=True)
        assert ids(checks.check_development_mode) == ["secure_sso.E010"]

    @pytest.mark.parametrize("value", [False, DROP])
    def test_e010_absent_when_off(self, settings: Any, value: Any) -> None:
        """Without DEVELOPMENT_MODE the deploy check is silent."""
        configure(settings, DEVELOPMENT_MODE=value)
        assert ids(checks.check_development_mode) == []

    def test_e010_is_deploy_only(self) -> None:
        """E010 is registered as a deploy check, not among the everyday checks."""
        from django.core.checks import registry

        assert checks.check_development_mode in registry.registry.get_checks(
            include_deployment_checks=True
        )
        assert checks.check_development_mode not in registry.registry.get_checks(
            include_deployment_checks=False
        )


class TestGroups:
    @pytest.mark.parametrize("group_map", [["admins"], "admins", {"admins": ""}, {"admins": 5},
                                           {5: "Administrators"}, None])
    def test_e012_bad_group_map(self, settings: Any, group_map: Any) -> None:
        """A GROUP_MAP that is not a dict of non-empty strings is E012."""
        configure(settings, GROUP_MAP=group_map, GROUPS_CLAIM="groups")
        assert ids(checks.check_groups) == ["secure_sso.E012"]

    @pytest.mark.parametrize("rule", [
        {"GROUP_MAP": {"admins": "Administrators"}},
        {"STAFF_GROUPS": ["admins"]},
        {"SUPERUSER_GROUPS": ["root"]},
    ])
    def test_w002_rules_without_claim(self, settings: Any, rule: dict) -> None:
        """Group rules without GROUPS_CLAIM warn W002; with a claim they do not."""
        configure(settings, **rule)
        assert ids(checks.check_groups) == ["secure_sso.W002"]
        configure(settings, GROUPS_CLAIM="groups", **rule)
        assert ids(checks.check_groups) == []


class TestUnknownKeysAndSessions:
    def test_w001_unknown_keys(self, settings: Any) -> None:
        """A misspelt key is W001 and the message names it."""
        configure(settings, CLIENTID="oops")
        messages = checks.check_unknown_keys(None)
        assert [m.id for m in messages] == ["secure_sso.W001"]
        assert "CLIENTID" in messages[0].msg

    def test_e031_signed_cookie_sessions(self, settings: Any) -> None:
        """Signed-cookie sessions are an error (E031; W003 before tokens were kept)."""
        settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
        assert "secure_sso.E031" in ids(checks.check_single_sign_out)

    @pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.db",
                                        "django.contrib.sessions.backends.cached_db"])
    def test_e031_absent_for_server_side_sessions(self, settings: Any, engine: str) -> None:
        """Server-side session engines pass."""
        settings.SESSION_ENGINE = engine
        assert ids(checks.check_single_sign_out) == []


class TestRegistration:
    def test_every_check_registered(self) -> None:
        """Every check function runs under manage.py check."""
        from django.core.checks import registry

        registered = registry.registry.get_checks(include_deployment_checks=True)
        for check in [*ALL_CHECKS, checks.check_development_mode]:
            assert check in registered


class TestPrivilegeGroups:
    @pytest.mark.parametrize("key", ["STAFF_GROUPS", "SUPERUSER_GROUPS"])
    @pytest.mark.parametrize("value", ["admins", ["admins", 5], [""], {"admins": True}, 7])
    def test_e014_bad_privilege_groups(self, settings: Any, key: str, value: Any) -> None:
        """Staff/superuser rules that are not lists of names (e.g. a bare string) are E014."""
        configure(settings, GROUPS_CLAIM="groups", **{key: value})
        assert ids(checks.check_groups) == ["secure_sso.E014"]

    @pytest.mark.parametrize("value", [[], ["admins"], ("a-team", "ops"), None])
    def test_e014_absent_for_lists(self, settings: Any, value: Any) -> None:
        """Lists or tuples of names, or nothing, pass."""
        configure(settings, GROUPS_CLAIM="groups", STAFF_GROUPS=value, SUPERUSER_GROUPS=value)
        assert ids(checks.check_groups) == []

    @pytest.mark.parametrize("value", [["groups"], 5, ""])
    def test_e015_groups_claim_not_a_name(self, settings: Any, value: Any) -> None:
        """A GROUPS_CLAIM that is not a claim name is E015."""
        configure(settings, GROUPS_CLAIM=value)
        assert "secure_sso.E015" in ids(checks.check_groups)

    def test_bare_string_rule_grants_nothing_at_runtime(self, settings: Any) -> None:
        """Fail closed: STAFF_GROUPS='admins' gives no staff even to a group named 'a'."""
        from secure_sso.conf import sso_settings

        configure(settings, GROUPS_CLAIM="groups", STAFF_GROUPS="admins")
        assert sso_settings.STAFF_GROUPS == frozenset()


HARDENING_CHECKS = [
    checks.check_transport_middleware,
    checks.check_session_guard_middleware,
    checks.check_csp,
    checks.check_development_exposure,
    checks.check_cookie_prefixes,
    checks.check_samesite,
    checks.check_js_readable_cookies,
    checks.check_binding_cookie_name,
    checks.check_hardening_numbers,
]
HARDENING_DEPLOY_CHECKS = [checks.check_transport_deploy, checks.check_sessions_deploy]
TRANSPORT = "secure_sso.middleware.TransportMiddleware"
GUARD = "secure_sso.middleware.SessionGuardMiddleware"
SESSION_MW = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH_MW = "django.contrib.auth.middleware.AuthenticationMiddleware"


def without(*names: str) -> list[str]:
    return [m for m in django_settings.MIDDLEWARE if m not in names]


def message_of(check: Any, check_id: str) -> Any:
    return next(m for m in check(None) if m.id == check_id)


class TestHardeningCleanConfiguration:
    def test_test_settings_pass_hardening_checks(self) -> None:
        """The suite's settings (README's middleware order) pass every new everyday check."""
        assert ids(*HARDENING_CHECKS) == []

    def test_production_settings_pass_hardening_deploy_checks(self, settings: Any) -> None:
        """Defaults (https redirect, a year of HSTS, binding, both timeouts) pass --deploy."""
        configure(settings, ISSUER="https://op.example/", DEVELOPMENT_MODE=DROP)
        settings.DEBUG = False
        assert ids(*HARDENING_CHECKS, *HARDENING_DEPLOY_CHECKS) == []

    def test_new_checks_registered(self) -> None:
        """Everyday checks run under manage.py check; deploy ones only under --deploy."""
        from django.core.checks import registry

        everyday = registry.registry.get_checks(include_deployment_checks=False)
        deploy = registry.registry.get_checks(include_deployment_checks=True)
        for check in HARDENING_CHECKS:
            assert check in everyday
        for check in HARDENING_DEPLOY_CHECKS:
            assert check in deploy
            assert check not in everyday


class TestTransportMiddlewareOrder:
    def test_e016_missing(self, settings: Any) -> None:
        """Without TransportMiddleware, E016."""
        settings.MIDDLEWARE = without(TRANSPORT)
        assert ids(checks.check_transport_middleware) == ["secure_sso.E016"]
        assert "not in MIDDLEWARE" in message_of(
            checks.check_transport_middleware, "secure_sso.E016").msg

    def test_e016_after_session_middleware(self, settings: Any) -> None:
        """TransportMiddleware after SessionMiddleware would not see the session cookie: E016."""
        rest = without(TRANSPORT)
        settings.MIDDLEWARE = [*rest[:rest.index(SESSION_MW) + 1], TRANSPORT,
                               *rest[rest.index(SESSION_MW) + 1:]]
        assert ids(checks.check_transport_middleware) == ["secure_sso.E016"]
        assert "SessionMiddleware" in message_of(
            checks.check_transport_middleware, "secure_sso.E016").msg

    def test_e016_last(self, settings: Any) -> None:
        """At the end of MIDDLEWARE it is after both cookie-setting middleware: E016."""
        settings.MIDDLEWARE = [*without(TRANSPORT), TRANSPORT]
        message = message_of(checks.check_transport_middleware, "secure_sso.E016")
        assert "SessionMiddleware" in message.msg and "CsrfViewMiddleware" in message.msg

    def test_e016_absent_when_second(self, settings: Any) -> None:
        """After SecurityMiddleware but before SessionMiddleware is still fine."""
        rest = without(TRANSPORT)
        settings.MIDDLEWARE = [rest[0], TRANSPORT, *rest[1:]]
        assert ids(checks.check_transport_middleware) == []

    def test_subclass_counts(self, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """A project's subclass of TransportMiddleware satisfies the check."""
        import sys

        from secure_sso.middleware import TransportMiddleware

        subclass = type("TransportSubclass", (TransportMiddleware,), {})
        monkeypatch.setattr(sys.modules[__name__], "TransportSubclass", subclass, raising=False)
        settings.MIDDLEWARE = [f"{__name__}.TransportSubclass", *without(TRANSPORT)]
        assert ids(checks.check_transport_middleware) == []


class TestSessionGuardMiddlewareOrder:
    def test_e017_missing(self, settings: Any) -> None:
        """Without SessionGuardMiddleware, E017."""
        settings.MIDDLEWARE = without(GUARD)
        assert ids(checks.check_session_guard_middleware) == ["secure_sso.E017"]

    def test_e017_before_authentication(self, settings: Any) -> None:
        """Before AuthenticationMiddleware it sees no user: E017."""
        rest = without(GUARD)
        at = rest.index(AUTH_MW)
        settings.MIDDLEWARE = [*rest[:at], GUARD, *rest[at:]]
        assert ids(checks.check_session_guard_middleware) == ["secure_sso.E017"]

    def test_e017_absent_when_after_authentication(self, settings: Any) -> None:
        """Anywhere after AuthenticationMiddleware is fine (here: last)."""
        settings.MIDDLEWARE = [*without(GUARD), GUARD]
        assert ids(checks.check_session_guard_middleware) == []

    def test_e017_leaves_missing_authentication_to_e013(self, settings: Any) -> None:
        """Without AuthenticationMiddleware only E013 speaks."""
        settings.MIDDLEWARE = without(AUTH_MW)
        assert ids(checks.check_session_guard_middleware) == []


class TestContentSecurityPolicy:
    def test_w004_no_csp_middleware(self, settings: Any) -> None:
        """Without any CSP middleware, W004."""
        settings.MIDDLEWARE = without("secure_sso.middleware.CSPMiddleware")
        assert ids(checks.check_csp) == ["secure_sso.W004"]

    def test_w004_django_csp_without_policy(self, settings: Any) -> None:
        """django-csp's middleware sends nothing without CONTENT_SECURITY_POLICY: W004."""
        settings.MIDDLEWARE = [*without("secure_sso.middleware.CSPMiddleware"),
                               "csp.middleware.CSPMiddleware"]
        assert ids(checks.check_csp) == ["secure_sso.W004"]

    def test_w004_absent_with_django_csp_and_policy(self, settings: Any) -> None:
        """django-csp's middleware with a complete project policy passes."""
        from secure_sso.csp import package_policy

        settings.MIDDLEWARE = [*without("secure_sso.middleware.CSPMiddleware"),
                               "csp.middleware.CSPMiddleware"]
        settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": package_policy()}
        assert ids(checks.check_csp) == []

    def project_policy(self, settings: Any, **directives: Any) -> None:
        configure(settings, ISSUER="https://op.example:8443/", DEVELOPMENT_MODE=DROP)
        settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {
            "default-src": ["'self'"], "frame-ancestors": ["'none'"], **directives}}

    @pytest.mark.parametrize("form_action", [
        ["'self'"], ["'none'"], "'self'", ["https://op.example"], ["https://op.example:443"],
        ["https://other.example:8443"], ["http://op.example:9999"], ["*.op.example:8443"],
        ["'self'", "data:"], [],
    ])
    def test_w005_form_action_blocks_provider(self, settings: Any, form_action: Any) -> None:
        """A form-action that does not admit the provider's origin warns W005 and names it."""
        self.project_policy(settings, **{"form-action": form_action})
        assert ids(checks.check_csp) == ["secure_sso.W005"]
        assert "https://op.example:8443" in message_of(checks.check_csp, "secure_sso.W005").msg

    @pytest.mark.parametrize("form_action", [
        None, ["'self'", "https://op.example:8443"], "'self' https://op.example:8443",
        ["op.example:8443"], ["https:"], ["http:"], ["*"], ["https://*.example:*"],
        ["https://op.example:8443/end-session"], ["HTTPS://OP.EXAMPLE:8443"],
    ])
    def test_w005_absent_when_provider_allowed(self, settings: Any, form_action: Any) -> None:
        """Exact origin, scheme, wildcard or no form-action at all (unrestricted) pass."""
        directives = {} if form_action is None else {"form-action": form_action}
        self.project_policy(settings, **directives)
        assert ids(checks.check_csp) == []

    def test_w005_absent_without_provider_logout(self, settings: Any) -> None:
        """Without provider logout sign-out never redirects there."""
        self.project_policy(settings, **{"form-action": ["'self'"]})
        configure(settings, ISSUER="https://op.example:8443/", DEVELOPMENT_MODE=DROP,
                  PROVIDER_LOGOUT=False)
        assert ids(checks.check_csp) == []

    def test_w005_package_policy_allows_provider(self, settings: Any) -> None:
        """The package's own policy always admits the provider (unless CSP removes it)."""
        configure(settings, ISSUER="https://op.example/", DEVELOPMENT_MODE=DROP)
        assert ids(checks.check_csp) == []
        configure(settings, ISSUER="https://op.example/", DEVELOPMENT_MODE=DROP,
                  CSP={"form-action": None})
        assert ids(checks.check_csp) == []

    @pytest.mark.parametrize("frame_ancestors", [DROP, None, []])
    def test_w006_frame_ancestors_missing(self, settings: Any, frame_ancestors: Any) -> None:
        """A project policy without frame-ancestors warns W006."""
        self.project_policy(settings, **{"form-action": ["'self'", "https://op.example:8443"]})
        directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
        if frame_ancestors is DROP:
            del directives["frame-ancestors"]
        else:
            directives["frame-ancestors"] = frame_ancestors
        settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": directives}
        assert ids(checks.check_csp) == ["secure_sso.W006"]

    def test_w006_package_policy_without_frame_ancestors(self, settings: Any) -> None:
        """Removing frame-ancestors from the package policy (CSP: None) warns W006 too."""
        configure(settings, CSP={"frame-ancestors": None})
        assert ids(checks.check_csp) == ["secure_sso.W006"]

    def test_w006_absent_with_frame_ancestors(self, settings: Any) -> None:
        """frame-ancestors 'self' is the project's choice and passes."""
        self.project_policy(settings, **{"frame-ancestors": ["'self'"]})
        assert ids(checks.check_csp) == []


class TestDevelopmentExposure:
    @pytest.mark.parametrize("hosts", [["*"], ["www.example.com"], ["127.0.0.1", "dev.example"],
                                       ["127.evil.example"], [".example.com"]])
    def test_e018_debug_dev_mode_on_network(self, settings: Any, hosts: list[str]) -> None:
        """DEVELOPMENT_MODE + DEBUG + a non-loopback ALLOWED_HOSTS entry is E018 (no --deploy)."""
        configure(settings, DEVELOPMENT_MODE=True)
        settings.DEBUG = True
        settings.ALLOWED_HOSTS = hosts
        assert ids(checks.check_development_exposure) == ["secure_sso.E018"]
        assert checks.check_development_exposure in _everyday_checks()

    @pytest.mark.parametrize("hosts", [[], ["127.0.0.1", "localhost", "[::1]"], [".localhost"],
                                       ["127.0.0.2", "::1"]])
    def test_e018_absent_for_loopback(self, settings: Any, hosts: list[str]) -> None:
        """Loopback-only hosts are the development mode's purpose."""
        configure(settings, DEVELOPMENT_MODE=True)
        settings.DEBUG = True
        settings.ALLOWED_HOSTS = hosts
        assert ids(checks.check_development_exposure) == []

    @pytest.mark.parametrize(("dev", "debug"), [(True, False), (False, True)])
    def test_e018_needs_both(self, settings: Any, dev: bool, debug: bool) -> None:
        """Either alone is not E018 (E010 and Django's W018 cover them under --deploy)."""
        configure(settings, DEVELOPMENT_MODE=dev)
        settings.DEBUG = debug
        settings.ALLOWED_HOSTS = ["*"]
        assert ids(checks.check_development_exposure) == []


def _everyday_checks() -> list[Any]:
    from django.core.checks import registry

    return list(registry.registry.get_checks(include_deployment_checks=False))


class TestCookiePrefixes:
    @pytest.mark.parametrize("overrides", [
        {"SESSION_COOKIE_DOMAIN": ".example.com", "SESSION_COOKIE_SECURE": True},
        {"SESSION_COOKIE_PATH": "/app/", "SESSION_COOKIE_SECURE": True},
        {"SESSION_COOKIE_SECURE": False},
    ])
    def test_e019_host_prefix_broken(self, settings: Any, overrides: dict) -> None:
        """A __Host- session cookie with a domain, a path or without Secure is E019."""
        settings.SESSION_COOKIE_NAME = "__Host-sessionid"
        for name, value in overrides.items():
            setattr(settings, name, value)
        assert ids(checks.check_cookie_prefixes) == ["secure_sso.E019"]

    def test_e019_secure_prefix_needs_secure(self, settings: Any) -> None:
        """A __Secure- CSRF cookie without CSRF_COOKIE_SECURE is E019."""
        settings.CSRF_COOKIE_NAME = "__Secure-csrftoken"
        settings.CSRF_COOKIE_SECURE = False
        message = message_of(checks.check_cookie_prefixes, "secure_sso.E019")
        assert "CSRF_COOKIE_SECURE" in message.msg

    def test_e019_absent_for_valid_prefixes(self, settings: Any) -> None:
        """README's __Host- session cookie, done right, passes; so does CSRF_USE_SESSIONS."""
        settings.SESSION_COOKIE_NAME = "__Host-sessionid"
        settings.SESSION_COOKIE_SECURE = True
        settings.SESSION_COOKIE_DOMAIN = None
        settings.SESSION_COOKIE_PATH = "/"
        settings.CSRF_COOKIE_NAME = "__Host-csrftoken"
        settings.CSRF_USE_SESSIONS = True
        assert ids(checks.check_cookie_prefixes) == []


class TestSameSite:
    @pytest.mark.parametrize("value", ["None", "none", "lax", "", None, 1])
    def test_e020_cookie_samesite_invalid(self, settings: Any, value: Any) -> None:
        """COOKIE_SAMESITE other than 'Lax'/'Strict' (e.g. 'None') is E020."""
        configure(settings, COOKIE_SAMESITE=value)
        assert ids(checks.check_samesite) == ["secure_sso.E020"]

    def test_w010_session_cookie_strict(self, settings: Any) -> None:
        """SESSION_COOKIE_SAMESITE = 'Strict' loses the pending sign-in: W010."""
        settings.SESSION_COOKIE_SAMESITE = "Strict"
        assert ids(checks.check_samesite) == ["secure_sso.W010"]

    def test_w010_strict_fallback_reaches_session_cookie(self, settings: Any) -> None:
        """COOKIE_SAMESITE 'Strict' is W010 when Django sets no SameSite on the session cookie."""
        configure(settings, COOKIE_SAMESITE="Strict")
        settings.SESSION_COOKIE_SAMESITE = None
        assert ids(checks.check_samesite) == ["secure_sso.W010"]

    def test_w010_absent_for_lax(self, settings: Any) -> None:
        """Lax session cookie passes, even with COOKIE_SAMESITE 'Strict' for other cookies."""
        settings.SESSION_COOKIE_SAMESITE = "Lax"
        assert ids(checks.check_samesite) == []
        configure(settings, COOKIE_SAMESITE="Strict")
        assert ids(checks.check_samesite) == []


class TestJsReadableCookies:
    @pytest.mark.parametrize("value", ["csrftoken", ["csrftoken", 5], [""], None])
    def test_e021_not_a_list_of_names(self, settings: Any, value: Any) -> None:
        """A bare string or non-names is E021."""
        configure(settings, JS_READABLE_COOKIES=value)
        assert ids(checks.check_js_readable_cookies) == ["secure_sso.E021"]

    @pytest.mark.parametrize("name", ["sessionid", "secure_sso_binding",
                                      "__Host-secure_sso_binding"])
    def test_e022_session_or_binding_cookie(self, settings: Any, name: str) -> None:
        """Listing the session or binding cookie is E022, naming it."""
        configure(settings, JS_READABLE_COOKIES=["csrftoken", name])
        assert ids(checks.check_js_readable_cookies) == ["secure_sso.E022"]
        assert repr(name) in message_of(checks.check_js_readable_cookies, "secure_sso.E022").msg

    def test_e022_follows_renamed_cookies(self, settings: Any) -> None:
        """The check uses the configured names, not the defaults."""
        settings.SESSION_COOKIE_NAME = "app_session"
        configure(settings, BINDING_COOKIE_NAME="bind", JS_READABLE_COOKIES=["sessionid"])
        assert ids(checks.check_js_readable_cookies) == []
        configure(settings, BINDING_COOKIE_NAME="bind", JS_READABLE_COOKIES=["__Host-bind"])
        assert ids(checks.check_js_readable_cookies) == ["secure_sso.E022"]

    @pytest.mark.parametrize("value", [[], ["csrftoken"], ("csrftoken", "theme")])
    def test_e021_e022_absent(self, settings: Any, value: Any) -> None:
        """Other cookies may be readable."""
        configure(settings, JS_READABLE_COOKIES=value)
        assert ids(checks.check_js_readable_cookies) == []


class TestBindingCookieName:
    @pytest.mark.parametrize("name", ["", "has space", "semi;colon", "quo\"te", "a=b", "é",
                                      None, 5, "__Host-bind", "__Secure-bind", "sessionid",
                                      "csrftoken", "tab\t"])
    def test_e024_invalid(self, settings: Any, name: Any) -> None:
        """Not a token, prefixed, or clashing with the session/CSRF cookie: E024."""
        configure(settings, BINDING_COOKIE_NAME=name)
        assert ids(checks.check_binding_cookie_name) == ["secure_sso.E024"]

    @pytest.mark.parametrize("name", ["secure_sso_binding", "bind-1", "x.y~z"])
    def test_e024_absent(self, settings: Any, name: str) -> None:
        """Plain tokens pass."""
        configure(settings, BINDING_COOKIE_NAME=name)
        assert ids(checks.check_binding_cookie_name) == []


class TestHardeningNumbers:
    @pytest.mark.parametrize("key", ["HSTS_SECONDS", "SESSION_IDLE_TIMEOUT",
                                     "SESSION_ABSOLUTE_TIMEOUT"])
    @pytest.mark.parametrize("value", [-1, "1800", 1800.0, None, True])
    def test_e023_not_non_negative_int(self, settings: Any, key: str, value: Any) -> None:
        """HSTS and session lifetimes must be whole non-negative seconds: E023."""
        configure(settings, **{key: value})
        assert ids(checks.check_hardening_numbers) == ["secure_sso.E023"]

    def test_w011_idle_longer_than_absolute(self, settings: Any) -> None:
        """An idle timeout beyond the absolute one never applies: W011."""
        configure(settings, SESSION_IDLE_TIMEOUT=7200, SESSION_ABSOLUTE_TIMEOUT=3600)
        assert ids(checks.check_hardening_numbers) == ["secure_sso.W011"]

    @pytest.mark.parametrize(("idle", "absolute"), [(1800, 43200), (3600, 3600), (0, 60),
                                                    (7200, 0), (0, 0)])
    def test_w011_absent(self, settings: Any, idle: int, absolute: int) -> None:
        """Idle within absolute, or either disabled, passes."""
        configure(settings, SESSION_IDLE_TIMEOUT=idle, SESSION_ABSOLUTE_TIMEOUT=absolute)
        assert ids(checks.check_hardening_numbers) == []


class TestHardeningDeploy:
    def test_w007_https_redirect_off(self, settings: Any) -> None:
        """HTTPS_REDIRECT False is W007 under --deploy."""
        configure(settings, HTTPS_REDIRECT=False)
        assert ids(checks.check_transport_deploy) == ["secure_sso.W007"]

    @pytest.mark.parametrize("seconds", [0, 3600, 31_535_999])
    def test_w008_short_hsts(self, settings: Any, seconds: int) -> None:
        """Less than a year of HSTS (or none) is W008."""
        configure(settings, HSTS_SECONDS=seconds)
        assert ids(checks.check_transport_deploy) == ["secure_sso.W008"]

    @pytest.mark.parametrize("seconds", [31_536_000, 63_072_000, DROP])
    def test_w007_w008_absent(self, settings: Any, seconds: Any) -> None:
        """Redirect on and a year or more of HSTS pass."""
        configure(settings, HTTPS_REDIRECT=True, HSTS_SECONDS=seconds)
        assert ids(checks.check_transport_deploy) == []

    def test_w008_leaves_bad_types_to_e023(self, settings: Any) -> None:
        """A non-integer HSTS_SECONDS is E023's, not W008's."""
        configure(settings, HSTS_SECONDS="a year")
        assert ids(checks.check_transport_deploy) == []

    def test_w009_binding_off(self, settings: Any) -> None:
        """SESSION_BINDING False is W009 under --deploy."""
        configure(settings, SESSION_BINDING=False)
        assert ids(checks.check_sessions_deploy) == ["secure_sso.W009"]

    @pytest.mark.parametrize("key", ["SESSION_IDLE_TIMEOUT", "SESSION_ABSOLUTE_TIMEOUT"])
    def test_w012_timeout_disabled(self, settings: Any, key: str) -> None:
        """A disabled (0) session lifetime is W012 under --deploy, naming the key."""
        configure(settings, **{key: 0})
        assert ids(checks.check_sessions_deploy) == ["secure_sso.W012"]
        assert key in message_of(checks.check_sessions_deploy, "secure_sso.W012").msg

    def test_w009_w012_absent_by_default(self, settings: Any) -> None:
        """Binding on and both lifetimes set (the defaults) pass."""
        configure(settings, SESSION_BINDING=True)
        assert ids(checks.check_sessions_deploy) == []

    def test_deploy_checks_not_everyday(self) -> None:
        """W007/W008/W009/W012 only run under --deploy."""
        everyday = _everyday_checks()
        assert checks.check_transport_deploy not in everyday
        assert checks.check_sessions_deploy not in everyday


class TestHeaderOverlap:
    def test_w013_django_value_would_win(self, settings: Any) -> None:
        """A package Referrer-Policy that Django's SecurityMiddleware would shadow is W013."""
        configure(settings, REFERRER_POLICY="no-referrer")
        assert ids(checks.check_header_overlap) == ["secure_sso.W013"]

    def test_w013_absent_when_they_agree(self, settings: Any) -> None:
        """Equal values, or Django's set to None, pass."""
        configure(settings, REFERRER_POLICY="same-origin")
        assert ids(checks.check_header_overlap) == []
        settings.SECURE_CROSS_ORIGIN_OPENER_POLICY = None
        configure(settings, CROSS_ORIGIN_OPENER_POLICY="same-origin-allow-popups")
        assert ids(checks.check_header_overlap) == []


class TestStepUp:
    def test_clean(self) -> None:
        """The suite's settings (TOTP, django-otp installed, middleware in place) pass."""
        assert ids(checks.check_step_up) == []

    @pytest.mark.parametrize(
        ("values", "expected"),
        [
            ({"STEP_UP_METHOD": "sms"}, "secure_sso.E025"),
            ({"STEP_UP_WITHOUT_DEVICE": "allow"}, "secure_sso.E026"),
            ({"STEP_UP_METHOD": "provider", "STEP_UP_AMR": []}, "secure_sso.E027"),
            ({"STEP_UP_MAX_AGE": 0}, "secure_sso.E030"),
        ],
    )
    def test_bad_values(self, settings: Any, values: dict, expected: str) -> None:
        """Each bad step-up setting is reported by its id."""
        configure(settings, **values)
        assert expected in ids(checks.check_step_up)

    def test_e028_django_otp_missing(self, settings: Any) -> None:
        """TOTP step-up without django-otp installed is E028."""
        settings.INSTALLED_APPS = [
            a for a in settings.INSTALLED_APPS if not a.startswith("django_otp")
        ]
        assert "secure_sso.E028" in ids(checks.check_step_up)

    def test_e029_and_w014_middleware(self, settings: Any) -> None:
        """StepUpMiddleware before the session guard is E029; protected URLs without it W014."""
        mw = [m for m in settings.MIDDLEWARE if not m.endswith("StepUpMiddleware")]
        settings.MIDDLEWARE = ["secure_sso.middleware.StepUpMiddleware", *mw]
        assert "secure_sso.E029" in ids(checks.check_step_up)
        settings.MIDDLEWARE = mw
        configure(settings, STEP_UP_URLS=["/billing/"])
        assert ids(checks.check_step_up) == ["secure_sso.W014"]
