"""System checks for single sign-out, tokens and the shared store: each id fires on the
bad setting and stays silent on the good one (``check_single_sign_out`` E031-E035,
E037-E039, W015; ``check_state_store_deploy`` E036 under ``--deploy`` only)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings

from secure_sso import checks
from tests import settings as test_settings

BASE = dict(django_settings.SECURE_SSO)
LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
FILEBASED = "django.core.cache.backends.filebased.FileBasedCache"
DUMMY = "django.core.cache.backends.dummy.DummyCache"
DBCACHE = "django.core.cache.backends.db.DatabaseCache"
REDIS = "django.core.cache.backends.redis.RedisCache"
MEMCACHED = "django.core.cache.backends.memcached.PyMemcacheCache"


def configure(settings: Any, **values: Any) -> None:
    settings.SECURE_SSO = {**BASE, **values}


def ids(check: Any = checks.check_single_sign_out) -> list[str]:
    return [message.id for message in check(None)]


def caches(settings: Any, **aliases: str) -> None:
    settings.CACHES = {
        "default": {"BACKEND": LOCMEM},
        **{alias: {"BACKEND": backend, "LOCATION": alias} for alias, backend in aliases.items()},
    }


def test_test_settings_pass() -> None:
    assert ids() == []
    assert ids(checks.check_state_store_deploy) == []


def test_both_registered_deploy_only_for_e036() -> None:
    from django.core.checks import registry

    everyday = registry.registry.get_checks(include_deployment_checks=False)
    deploy = registry.registry.get_checks(include_deployment_checks=True)
    assert checks.check_single_sign_out in everyday
    assert checks.check_state_store_deploy in deploy
    assert checks.check_state_store_deploy not in everyday


# -- session engine --------------------------------------------------------------


def test_e031_signed_cookies(settings: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    assert ids() == ["secure_sso.E031"]


@pytest.mark.parametrize("engine", ["db", "cached_db", "file"])
def test_e031_absent_for_server_side_sessions(settings: Any, engine: str) -> None:
    settings.SESSION_ENGINE = f"django.contrib.sessions.backends.{engine}"
    assert ids() == []


def test_w015_cache_sessions_with_backchannel_logout(settings: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    assert ids() == ["secure_sso.W015"]
    configure(settings, BACKCHANNEL_LOGOUT=False)
    assert ids() == []


# -- token keys ---------------------------------------------------------------------


@pytest.mark.parametrize("keys", [
    ["too-short"], ["k" * 31], ["k" * 40, "short"], "k" * 40, [b"k" * 40], [None], 42, None,
])
def test_e032_bad_token_keys(settings: Any, keys: Any) -> None:
    configure(settings, TOKEN_ENCRYPTION_KEYS=keys)
    assert ids() == ["secure_sso.E032"]


@pytest.mark.parametrize("keys", [[], ["k" * 32], ("n" * 48, "o" * 32)])
def test_e032_absent_for_good_keys(settings: Any, keys: Any) -> None:
    configure(settings, TOKEN_ENCRYPTION_KEYS=keys)
    assert ids() == []


# -- the shared store -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["redis", "", None, "Database", 1])
def test_e033_unknown_store(settings: Any, value: Any) -> None:
    configure(settings, STATE_STORE=value)
    assert ids() == ["secure_sso.E033"]


def test_e034_alias_not_in_caches(settings: Any) -> None:
    caches(settings)
    configure(settings, STATE_STORE="cache", STATE_CACHE_ALIAS="nope")
    assert ids() == ["secure_sso.E034"]


def test_e035_dummy_cache(settings: Any) -> None:
    caches(settings, store=DUMMY)
    configure(settings, STATE_STORE="cache", STATE_CACHE_ALIAS="store")
    assert ids() == ["secure_sso.E035"]


@pytest.mark.parametrize("backend", [REDIS, MEMCACHED, DBCACHE, LOCMEM, FILEBASED])
def test_e033_e034_e035_absent_for_a_real_cache(settings: Any, backend: str) -> None:
    caches(settings, store=backend)
    configure(settings, STATE_STORE="cache", STATE_CACHE_ALIAS="store")
    assert ids() == []


@pytest.mark.parametrize("backend", [LOCMEM, FILEBASED])
def test_e036_unshared_cache_under_deploy(settings: Any, backend: str) -> None:
    caches(settings, store=backend)
    configure(settings, STATE_STORE="cache", STATE_CACHE_ALIAS="store")
    assert ids(checks.check_state_store_deploy) == ["secure_sso.E036"]
    assert "E036" not in " ".join(ids())  # not an everyday check


@pytest.mark.parametrize("backend", [REDIS, MEMCACHED, DBCACHE])
def test_e036_absent_for_shared_caches(settings: Any, backend: str) -> None:
    caches(settings, store=backend)
    configure(settings, STATE_STORE="cache", STATE_CACHE_ALIAS="store")
    assert ids(checks.check_state_store_deploy) == []


def test_e036_absent_for_the_database_store(settings: Any) -> None:
    caches(settings, store=LOCMEM)
    configure(settings, STATE_STORE="database", STATE_CACHE_ALIAS="store")
    assert ids(checks.check_state_store_deploy) == []


def test_e036_default_alias_with_django_default_caches(settings: Any) -> None:
    """The test settings set no CACHES: Django's default is a LocMemCache, which E036 names."""
    assert not hasattr(test_settings, "CACHES")
    configure(settings, STATE_STORE="cache")
    assert ids(checks.check_state_store_deploy) == ["secure_sso.E036"]


# -- numbers and the logout URL ------------------------------------------------------------


@pytest.mark.parametrize("key", ["REVALIDATE_AFTER", "REFRESH_BEFORE_EXPIRY"])
@pytest.mark.parametrize("value", [-1, -0.5, "900", None, True, [60]])
def test_e037_bad_seconds(settings: Any, key: str, value: Any) -> None:
    configure(settings, **{key: value})
    assert ids() == ["secure_sso.E037"]


@pytest.mark.parametrize("key", ["REVALIDATE_AFTER", "REFRESH_BEFORE_EXPIRY"])
@pytest.mark.parametrize("value", [0, 60, 900.5])
def test_e037_absent_for_seconds(settings: Any, key: str, value: Any) -> None:
    configure(settings, **{key: value})
    assert ids() == []


@pytest.mark.parametrize("uri", [
    "http://site.example/sso/logout/complete/",  # plain http, not loopback
    "/sso/logout/complete/",  # relative
    "https:///no-host",
    "javascript:alert(1)",
    "https://[::1",  # urlsplit raises ValueError: still E038, not a crashed check
    42,
])
def test_e038_bad_post_logout_redirect_uri(settings: Any, uri: Any) -> None:
    configure(settings, POST_LOGOUT_REDIRECT_URI=uri)
    assert ids() == ["secure_sso.E038"]


def test_e038_loopback_http_needs_development_mode(settings: Any) -> None:
    uri = "http://localhost:8000/sso/logout/complete/"
    configure(settings, POST_LOGOUT_REDIRECT_URI=uri)
    assert ids() == []
    configure(settings, POST_LOGOUT_REDIRECT_URI=uri, DEVELOPMENT_MODE=False)
    assert ids() == ["secure_sso.E038"]


@pytest.mark.parametrize("uri", [None, "https://site.example/sso/logout/complete/"])
def test_e038_absent(settings: Any, uri: Any) -> None:
    configure(settings, POST_LOGOUT_REDIRECT_URI=uri)
    assert ids() == []


@pytest.mark.parametrize("value", [0, -1, "120", None, True])
def test_e039_bad_logout_token_max_age(settings: Any, value: Any) -> None:
    configure(settings, LOGOUT_TOKEN_MAX_AGE=value)
    assert ids() == ["secure_sso.E039"]


@pytest.mark.parametrize("value", [1, 120, 300.0])
def test_e039_absent(settings: Any, value: Any) -> None:
    configure(settings, LOGOUT_TOKEN_MAX_AGE=value)
    assert ids() == []
