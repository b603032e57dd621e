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
    checks.check_session_engine,
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

    def test_w003_signed_cookie_sessions(self, settings: Any) -> None:
        """Signed-cookie sessions warn W003."""
        settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
        assert ids(checks.check_session_engine) == ["secure_sso.W003"]

    @pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.db",
                                        "django.contrib.sessions.backends.cache"])
    def test_w003_absent_for_server_side_sessions(self, settings: Any, engine: str) -> None:
        """Server-side session engines pass."""
        settings.SESSION_ENGINE = engine
        assert ids(checks.check_session_engine) == []


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
