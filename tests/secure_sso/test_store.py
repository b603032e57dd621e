"""The shared single-use store (``secure_sso.store``): a value is claimed once by every
worker, in the database (``SingleUseValue``) or a shared cache; only digests are kept;
a store that cannot be asked refuses (``StoreUnavailable``), and the callback with it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from secure_sso import store
from secure_sso.constants import SESSION_PENDING_KEY, SESSION_SUBJECT_KEY
from secure_sso.exceptions import StoreUnavailable
from secure_sso.intervals import Every
from secure_sso.models import SingleUseValue
from tests.forge import ForgedProvider
from tests.forged_signin import query_of

pytestmark = pytest.mark.django_db

LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
SUB = "forged-user"


class DownCache(BaseCache):
    """A cache whose server cannot be reached (every call raises ``ConnectionError``)."""

    error: type[Exception] = ConnectionError

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error("cache server unreachable")

    add = get = set = delete = touch = clear = has_key = _fail


class ClientLibraryError(Exception):
    """What redis-py and pymemcache raise: their own errors, not ``OSError`` subclasses
    (``redis.exceptions.ConnectionError`` derives from ``RedisError(Exception)``)."""


class ClientLibraryDownCache(DownCache):
    error = ClientLibraryError


def use_cache_store(settings: Any, backend: str, alias: str = "sso-store") -> None:
    settings.CACHES = {
        "default": {"BACKEND": LOCMEM, "LOCATION": "default"},
        alias: {"BACKEND": backend, "LOCATION": f"store-{uuid.uuid4().hex}"},
    }
    settings.SECURE_SSO = {
        **settings.SECURE_SSO, "STATE_STORE": "cache", "STATE_CACHE_ALIAS": alias,
    }


# -- database ------------------------------------------------------------------------


class TestDatabase:
    def test_second_claim_refused(self) -> None:
        assert store.use_once("state", "value-1", ttl=60) is True
        assert store.use_once("state", "value-1", ttl=60) is False
        assert store.use_once("state", "value-1", ttl=60) is False

    def test_namespaces_are_separate(self) -> None:
        assert store.use_once("state", "shared", ttl=60) is True
        assert store.use_once("jti", "shared", ttl=60) is True
        assert store.use_once("jti", "shared", ttl=60) is False

    def test_expired_claim_may_be_made_again(self) -> None:
        assert store.use_once_at_time("state", "v", ttl=10, now=1_000_000.0) is True
        assert store.use_once_at_time("state", "v", ttl=10, now=1_000_009.0) is False
        assert store.use_once_at_time("state", "v", ttl=10, now=1_000_011.0) is True
        assert store.use_once_at_time("state", "v", ttl=10, now=1_000_012.0) is False

    def test_first_claim_of_a_fresh_worker_purges_expired_claims(self, monkeypatch: Any) -> None:
        """Expired claims are swept by the first claim a worker makes, whatever the clock
        reads (``now`` near zero: the purge is not postponed by a start value)."""
        monkeypatch.setattr(store, "_purges", Every(store.PURGE_INTERVAL))
        assert store.use_once_at_time("state", "old", ttl=1, now=1.0) is True
        monkeypatch.setattr(store, "_purges", Every(store.PURGE_INTERVAL))
        assert store.use_once_at_time("state", "new", ttl=60, now=5.0) is True
        assert list(SingleUseValue.objects.values_list("digest", flat=True)) == [
            store.digest("state", "new")
        ]

    def test_only_the_digest_is_stored(self) -> None:
        value = "the-secret-state-" + uuid.uuid4().hex
        assert store.use_once("state", value, ttl=60)
        [row] = SingleUseValue.objects.all()
        assert row.digest == store.digest("state", value)
        assert len(row.digest) == 64
        assert value not in row.digest
        assert SingleUseValue.objects.filter(digest__contains=value[:12]).count() == 0

    def test_database_error_is_store_unavailable(self, monkeypatch: Any) -> None:
        from django.db import OperationalError

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise OperationalError("database is locked")

        monkeypatch.setattr(SingleUseValue.objects, "create", broken)
        with pytest.raises(StoreUnavailable):
            store.use_once("state", "v", ttl=60)


@hypothesis_settings(max_examples=60, suppress_health_check=list(HealthCheck))
@given(
    values=st.lists(
        st.tuples(
            st.sampled_from(["state", "jti", "x"]),
            st.text(max_size=40),  # surrogates, NULs, emptiness included
        ),
        min_size=1,
        max_size=6,
        unique=True,
    ),
    backend=st.sampled_from(["database", "cache"]),
)
def test_any_value_is_accepted_exactly_once(
    values: list[tuple[str, str]], backend: str, settings: Any
) -> None:
    if backend == "cache":
        use_cache_store(settings, LOCMEM)
    else:
        settings.SECURE_SSO = {**settings.SECURE_SSO, "STATE_STORE": "database"}
        SingleUseValue.objects.all().delete()
    assert [store.use_once(ns, v, ttl=60) for ns, v in values] == [True] * len(values)
    assert [store.use_once(ns, v, ttl=60) for ns, v in values] == [False] * len(values)


# -- cache -----------------------------------------------------------------------------


class TestCache:
    def test_cache_claims_once_and_keeps_no_row(self, settings: Any) -> None:
        use_cache_store(settings, LOCMEM)
        value = "state-" + uuid.uuid4().hex
        assert store.use_once("state", value, ttl=60) is True
        assert store.use_once("state", value, ttl=60) is False
        assert not SingleUseValue.objects.exists()
        cache = caches["sso-store"]
        assert cache.get(f"secure_sso:once:{store.digest('state', value)}") == 1
        assert all(value not in key for key in cache._cache)  # type: ignore[attr-defined]

    def test_cache_claim_expires(self, settings: Any, time_machine: Any) -> None:
        use_cache_store(settings, LOCMEM)
        time_machine.move_to(1_900_000_000, tick=False)
        assert store.use_once("state", "v", ttl=10) is True
        time_machine.move_to(1_900_000_005, tick=False)
        assert store.use_once("state", "v", ttl=10) is False
        time_machine.move_to(1_900_000_020, tick=False)
        assert store.use_once("state", "v", ttl=10) is True

    @pytest.mark.parametrize("backend", [DownCache, ClientLibraryDownCache])
    def test_failing_cache_is_store_unavailable(self, settings: Any, backend: type) -> None:
        use_cache_store(settings, f"{__name__}.{backend.__name__}")
        with pytest.raises(StoreUnavailable) as raised:
            store.use_once("state", "v", ttl=60)
        assert raised.value.status == 503


# -- a claim that stands only if its transaction commits ------------------------------


class DeleteDownCache(LocMemCache):
    """Claims work, but the claim cannot be deleted again (the server went away)."""

    def delete(self, key: Any, version: Any = None) -> bool:
        raise ClientLibraryError("cache server unreachable")


class Boom(Exception):
    """What the block raises: an audit write or a database statement that failed."""


def use_store(settings: Any, state_store: str, backend: str = LOCMEM) -> None:
    if state_store == "cache":
        use_cache_store(settings, backend)
    else:
        settings.SECURE_SSO = {**settings.SECURE_SSO, "STATE_STORE": "database"}


@pytest.mark.parametrize("state_store", ["database", "cache"])
class TestInTransaction:
    def test_a_committed_claim_stands(self, settings: Any, state_store: str) -> None:
        use_store(settings, state_store)
        with store.use_once_in_transaction("jti", "v", ttl=60) as claimed:
            assert claimed is True
        assert store.use_once("jti", "v", ttl=60) is False
        with store.use_once_in_transaction("jti", "v", ttl=60) as claimed:
            assert claimed is False

    def test_a_failed_block_releases_the_claim_and_its_writes(
        self, settings: Any, state_store: str
    ) -> None:
        use_store(settings, state_store)
        with pytest.raises(Boom), store.use_once_in_transaction("jti", "v", ttl=60) as claimed:
            assert claimed
            Session.objects.create(session_key="k" * 32, session_data="",
                                   expire_date=timezone.now() + timedelta(days=1))
            raise Boom
        assert not Session.objects.exists()
        assert store.use_once("jti", "v", ttl=60) is True

    def test_a_failed_commit_releases_the_claim(
        self, settings: Any, monkeypatch: Any, state_store: str
    ) -> None:
        """The block succeeded but its transaction could not commit (here the savepoint
        release of the test's wrapping transaction stands in for the commit)."""
        from django.db import OperationalError, connection

        use_store(settings, state_store)
        real_commit = connection.savepoint_commit
        failures = []

        def failing_commit(sid: Any) -> None:
            if not failures:  # the commit fails; Atomic's clean-up release afterwards works
                failures.append(sid)
                raise OperationalError("could not serialize access")
            real_commit(sid)

        with pytest.raises(OperationalError):  # noqa: PT012
            with store.use_once_in_transaction("jti", "v", ttl=60) as claimed:
                assert claimed
                monkeypatch.setattr(connection, "savepoint_commit", failing_commit)
        monkeypatch.undo()
        assert len(failures) == 1
        assert store.use_once("jti", "v", ttl=60) is True

    def test_a_refused_claim_is_not_released_by_its_block(
        self, settings: Any, state_store: str
    ) -> None:
        """The block of a replay raises too: the claim it did not make stays."""
        use_store(settings, state_store)
        assert store.use_once("jti", "v", ttl=60) is True
        with pytest.raises(Boom), store.use_once_in_transaction("jti", "v", ttl=60) as claimed:
            assert claimed is False
            raise Boom
        assert store.use_once("jti", "v", ttl=60) is False


@pytest.mark.parametrize("backend", [DownCache, ClientLibraryDownCache])
def test_in_transaction_a_down_store_refuses_before_the_block(
    settings: Any, backend: type
) -> None:
    use_cache_store(settings, f"{__name__}.{backend.__name__}")
    ran = []
    with pytest.raises(StoreUnavailable), store.use_once_in_transaction("jti", "v", ttl=60):
        ran.append(True)
    assert ran == []


def test_in_transaction_a_down_database_refuses_before_the_block(monkeypatch: Any) -> None:
    from django.db import OperationalError

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("database is locked")

    monkeypatch.setattr(SingleUseValue.objects, "create", broken)
    ran = []
    with pytest.raises(StoreUnavailable), store.use_once_in_transaction("jti", "v", ttl=60):
        ran.append(True)
    assert ran == []
    monkeypatch.undo()
    assert store.use_once("jti", "v", ttl=60) is True


def test_in_transaction_a_cache_claim_that_cannot_be_released_is_logged(
    settings: Any, caplog: Any
) -> None:
    """The block's own error still reaches the caller; the stuck claim is logged as
    critical (a retry is refused until ``ttl`` runs out)."""
    use_cache_store(settings, f"{__name__}.{DeleteDownCache.__name__}")
    with pytest.raises(Boom), store.use_once_in_transaction("jti", "v", ttl=60):
        raise Boom
    assert store.use_once("jti", "v", ttl=60) is False
    [record] = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert record.getMessage() == "single-use claim not released: ClientLibraryError"


# -- the sign-in callback --------------------------------------------------------------


def begin(client: Client, forge: ForgedProvider) -> dict[str, str]:
    """Start a sign-in; the callback parameters a provider would send back."""
    query = query_of(client.get("/sso/login/")["Location"])
    forge.token_body = forge.token_response_for(forge.id_token(nonce=query["nonce"]))
    forge.userinfo = {"sub": SUB, "preferred_username": "forged.user"}
    return forge.callback_params(query["state"])


@pytest.mark.parametrize("backend", [DownCache, ClientLibraryDownCache])
@pytest.mark.usefixtures("configure")
def test_callback_fails_closed_when_the_store_is_down(
    client: Client, forge: ForgedProvider, settings: Any, backend: type
) -> None:
    params = begin(client, forge)
    use_cache_store(settings, f"{__name__}.{backend.__name__}")
    response = client.get("/sso/callback/", params)
    assert response.status_code == 503
    assert b"store_unavailable" in response.content
    assert "_auth_user_id" not in client.session
    assert forge.requests_to("/token") == []  # refused before the code was spent
    [failure] = AuditEvent.objects.filter(event_type="auth.login.failure")
    assert failure.reason == "store_unavailable"


@pytest.mark.usefixtures("configure")
def test_callback_replayed_from_a_stale_session_copy_is_refused(
    client: Client, forge: ForgedProvider
) -> None:
    """A second worker holding the pre-callback session still finds the pending state;
    the shared store refuses it there (``state_replayed``)."""
    params = begin(client, forge)
    cookie = django_settings.SESSION_COOKIE_NAME
    stale_key = client.cookies[cookie].value
    stale = Session.objects.get(pk=stale_key)
    stale_copy = (stale.session_data, stale.expire_date)

    response = client.get("/sso/callback/", params)
    assert response.status_code == 302
    assert client.session[SESSION_SUBJECT_KEY] == SUB
    assert not Session.objects.filter(pk=stale_key).exists()  # login() rotated the key

    # The other worker's copy: the session as it was before the callback.
    Session.objects.create(session_key=stale_key, session_data=stale_copy[0],
                           expire_date=stale_copy[1])
    other = Client(SERVER_NAME="localhost")
    other.cookies[cookie] = stale_key
    assert SESSION_PENDING_KEY in other.session  # the state is still pending there
    response = other.get("/sso/callback/", params)
    assert response.status_code == 400
    assert b"state_replayed" in response.content
    assert "_auth_user_id" not in other.session
    assert len(forge.requests_to("/token")) == 1  # the code was not spent twice
    assert [e.reason for e in AuditEvent.objects.filter(event_type="auth.login.failure")] == [
        "state_replayed"
    ]
