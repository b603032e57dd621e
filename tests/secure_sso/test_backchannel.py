"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0) against a forged provider.

Each refusal maps to an OpenID Foundation RP conformance module
(``oidcc-client-test-rp-backchannel-rpinitlogout-*``) or to a check of section 2.6;
the real provider's back-channel call is in tests/e2e/test_single_sign_out.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from secure_sso.models import SingleUseValue, SSOSession
from tests import forged_signin
from tests.forge import ForgedProvider, tamper_signature

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("configure")]

URL = "/sso/backchannel-logout/"
SUB = "forged-user"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture
def sso_settings_extra() -> dict[str, Any]:
    return {"JWKS_MIN_REFRESH_INTERVAL": 0}


def sign_in(forge: ForgedProvider, *, sub: str = SUB, sid: str | None = "forged-sid",
            user_agent: str = "Mozilla/5.0 Firefox/120.0") -> Client:
    """A browser (test client) signed in through the forge, its ID token carrying ``sid``."""
    browser = Client(SERVER_NAME="localhost", HTTP_USER_AGENT=user_agent)
    forged_signin.sign_in(browser, forge, sub=sub, claims={"sid": sid} if sid else {},
                          userinfo={"sub": sub, "preferred_username": sub})
    return browser


def signed_in(browser: Client) -> bool:
    return "_auth_user_id" in browser.session


def post(token: Any, **extra: Any) -> Any:
    provider = Client(SERVER_NAME="localhost")  # the provider's server: no cookies
    data = {} if token is None else {"logout_token": token}
    return provider.post(URL, data, **extra)


def refused(response: Any) -> str:
    assert response.status_code == 400, response.content[:300]
    assert response["Cache-Control"] == "no-store"
    body = json.loads(response.content)
    assert body["error"] == "invalid_request"
    return body["error_description"]


def events(outcome: str | None = None) -> list[AuditEvent]:
    found = AuditEvent.objects.filter(event_type="sso.backchannel_logout").order_by("seq")
    return list(found.filter(outcome=outcome) if outcome else found)


# -- accepted ------------------------------------------------------------------------


def test_valid_token_ends_the_session_of_that_sid(forge: ForgedProvider) -> None:
    """oidcc-client-test-rp-backchannel-rpinitlogout: 200, no-store, the session ends."""
    browser = sign_in(forge, sid="sid-1")
    other = sign_in(forge, sid="sid-2", user_agent="Mozilla/5.0 Chrome/120.0")
    response = post(forge.logout_token(sid="sid-1"))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert not signed_in(browser)
    assert browser.get("/").content == b"home: anonymous"
    # The other provider session of the same account stays.
    assert signed_in(other)
    assert list(SSOSession.objects.values_list("sid", flat=True)) == ["sid-2"]
    [event] = events("success")
    assert (event.subject, event.details["sessions_ended"], event.details["sid_given"]) == (
        SUB, 1, True
    )


def test_sub_only_token_ends_every_session_of_the_account(forge: ForgedProvider) -> None:
    """No sid: every session of that sub, on any browser, ends (two clients here)."""
    first = sign_in(forge, sid="a")
    second = sign_in(forge, sid="b", user_agent="Mozilla/5.0 Chrome/120.0")
    bystander = sign_in(forge, sub="someone-else", sid="c")
    response = post(forge.logout_token(sid=None))
    assert response.status_code == 200
    assert not signed_in(first) and not signed_in(second)
    assert signed_in(bystander)
    [event] = events("success")
    assert event.details["sessions_ended"] == 2


def test_sid_and_sub_must_both_match(forge: ForgedProvider) -> None:
    browser = sign_in(forge, sid="shared")
    assert post(forge.logout_token(sid="shared", sub="another-account")).status_code == 200
    assert signed_in(browser)


def test_no_matching_session_is_still_a_success(forge: ForgedProvider) -> None:
    """The session may have ended already: 200, audited with zero sessions."""
    response = post(forge.logout_token(sid="unknown"))
    assert response.status_code == 200
    [event] = events("success")
    assert event.details["sessions_ended"] == 0


def test_rotated_key_is_fetched_once(forge: ForgedProvider) -> None:
    """A token signed with a key the cached JWKS lacks: the JWKS is fetched again."""
    browser = sign_in(forge)
    forge.rotate_key()
    assert post(forge.logout_token()).status_code == 200
    assert not signed_in(browser)


def test_session_rotated_after_sign_in_is_still_found(forge: ForgedProvider) -> None:
    """A privilege change rotates the session key; the index follows it."""
    from secure_sso import sessions

    browser = sign_in(forge)
    old_key = browser.session.session_key
    SSOSession.objects.update(session_key=old_key)  # as written at sign-in
    user_model = browser.session["_auth_user_id"]
    assert user_model
    # Rotate through the package, the way the middleware does on a privilege change.
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.session = SessionStore(session_key=old_key)
    request.user = get_user_model().objects.get(pk=user_model)
    sessions.rotate(request)
    request.session.save()
    assert SSOSession.objects.get().session_key == request.session.session_key != old_key
    browser.cookies["sessionid"] = request.session.session_key
    assert post(forge.logout_token()).status_code == 200
    assert not SessionStore().exists(request.session.session_key)


def test_jti_is_stored_as_a_digest(forge: ForgedProvider) -> None:
    from secure_sso import store

    token = forge.logout_token({"jti": "visible-jti-value"})
    assert post(token).status_code == 200
    [claim] = SingleUseValue.objects.all()
    assert claim.digest == store.digest("jti", f"{forge.issuer}\0visible-jti-value")


# -- refused -------------------------------------------------------------------------

NOW = int(time.time())

#: (conformance module or spec step, how to forge the token, expected error code)
REFUSALS = [
    ("rpinitlogout-alg-none", {"alg": "none"}, "logout_token_signature_invalid"),
    ("rpinitlogout-wrong-alg (HS256 with the client secret)", {"alg": "HS256"},
     "logout_token_signature_invalid"),
    ("rpinitlogout-wrong-aud", {"claims": {"aud": "someone-else"}}, "logout_token_aud_invalid"),
    ("rpinitlogout-wrong-issuer", {"claims": {"iss": "https://evil.example"}},
     "logout_token_iss_invalid"),
    ("rpinitlogout-no-event", {"omit": ("events",)}, "logout_token_events_invalid"),
    ("rpinitlogout-wrong-event", {"claims": {"events": {"urn:other:event": {}}}},
     "logout_token_events_invalid"),
    ("event value not an object", {"claims": {"events": {EVENT: "yes"}}},
     "logout_token_events_invalid"),
    ("rpinitlogout-with-nonce", {"claims": {"nonce": "n-0S6_WzA2Mj"}},
     "logout_token_nonce_present"),
    ("neither sid nor sub", {"omit": ("sub", "sid")}, "logout_token_sid_sub_missing"),
    ("no jti", {"omit": ("jti",)}, "logout_token_jti_invalid"),
    ("no iat", {"omit": ("iat",)}, "logout_token_iat_invalid"),
    ("iat too old", {"claims": {"iat": NOW - 3600, "exp": NOW + 3600}},
     "logout_token_iat_invalid"),
    ("iat in the future", {"claims": {"iat": NOW + 3600, "exp": NOW + 7200}},
     "logout_token_iat_invalid"),
    ("expired", {"claims": {"iat": NOW - 100, "exp": NOW - 90}}, "logout_token_expired"),
    ("no exp", {"omit": ("exp",)}, "logout_token_exp_invalid"),
    ("an access token's typ", {"header": {"typ": "at+jwt"}}, "logout_token_typ_invalid"),
    ("signed by another key", {"wrong_key": True}, "logout_token_signature_invalid"),
    ("tampered signature", {"tamper": True}, "logout_token_signature_invalid"),
    ("kid nobody published", {"header": {"kid": "nobody"}}, "logout_token_unknown_kid"),
    ("sub not a string", {"claims": {"sub": 42}}, "logout_token_sub_invalid"),
]


def forged(forge: ForgedProvider, how: dict[str, Any]) -> str:
    key = forge.wrong_key() if how.get("wrong_key") else None
    token = forge.logout_token(
        how.get("claims"), omit=how.get("omit", ()), header_overrides=how.get("header"),
        alg=how.get("alg", "RS256"), key=key,
    )
    return tamper_signature(token) if how.get("tamper") else token


@pytest.mark.parametrize(("name", "how", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_invalid_token_is_refused_and_audited(
    forge: ForgedProvider, name: str, how: dict[str, Any], code: str
) -> None:
    browser = sign_in(forge)
    claims_before = SingleUseValue.objects.count()
    assert refused(post(forged(forge, how))) == code
    assert signed_in(browser), "a refused logout token must not end any session"
    [event] = events("failure")
    assert event.reason == code
    # A refused token's jti is not spent: the genuine token may still come.
    assert SingleUseValue.objects.count() == claims_before


def test_replayed_token_is_refused(forge: ForgedProvider) -> None:
    """Single use of jti (section 2.6 step 10): the same token twice is refused."""
    token = forge.logout_token(sid="first")
    assert post(token).status_code == 200
    browser = sign_in(forge, sid="first")
    assert refused(post(token)) == "logout_token_replayed"
    assert signed_in(browser)


def test_an_id_token_is_not_a_logout_token(forge: ForgedProvider) -> None:
    """A stolen ID token (nonce, no events) cannot sign anyone out."""
    browser = sign_in(forge)
    id_token = forge.id_token({"sid": "forged-sid", "jti": "x"}, nonce="n")
    assert refused(post(id_token)) == "logout_token_events_invalid"
    assert signed_in(browser)


@pytest.mark.parametrize("body", [None, "", "not-a-jwt", "a.b.c", "x" * 20000])
def test_missing_or_malformed_token(forge: ForgedProvider, body: Any) -> None:
    code = refused(post(body))
    assert code.startswith("logout_token_")
    assert events("failure")[0].reason == code


def test_two_logout_tokens_in_one_request_are_refused(forge: ForgedProvider) -> None:
    provider = Client(SERVER_NAME="localhost")
    token = forge.logout_token()
    response = provider.post(URL, f"logout_token={token}&logout_token={token}",
                             content_type="application/x-www-form-urlencoded")
    assert refused(response) == "logout_token_missing"


def test_get_is_not_allowed(forge: ForgedProvider) -> None:
    assert Client(SERVER_NAME="localhost").get(URL).status_code == 405


def test_off_switch(forge: ForgedProvider, settings: Any) -> None:
    settings.SECURE_SSO = {**settings.SECURE_SSO, "BACKCHANNEL_LOGOUT": False}
    assert post(forge.logout_token()).status_code == 404


def test_provider_unreachable_is_503(forge: ForgedProvider) -> None:
    """Keys cannot be fetched: temporarily_unavailable, the provider may retry."""
    forge.metadata_status = 500
    response = post(forge.logout_token())
    assert response.status_code == 503
    assert json.loads(response.content)["error"] == "temporarily_unavailable"
    assert response["Cache-Control"] == "no-store"


def test_no_csrf_token_needed_but_no_cookie_session_touched(forge: ForgedProvider) -> None:
    """The endpoint is CSRF-exempt (a server calls it) and sets no cookie."""
    provider = Client(SERVER_NAME="localhost", enforce_csrf_checks=True)
    response = provider.post(URL, {"logout_token": forge.logout_token()})
    assert response.status_code == 200
    assert not response.cookies


@pytest.mark.parametrize(
    "engine",
    ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db",
     "django.contrib.sessions.backends.cache", "django.contrib.sessions.backends.file"],
)
def test_every_server_side_session_engine(
    forge: ForgedProvider, settings: Any, tmp_path: Any, engine: str
) -> None:
    """The index ends the session through the engine's own delete(), whatever it is."""
    settings.SESSION_ENGINE = engine
    settings.SESSION_FILE_PATH = str(tmp_path)
    browser = sign_in(forge)
    key = browser.session.session_key
    assert post(forge.logout_token()).status_code == 200
    from importlib import import_module

    assert not import_module(engine).SessionStore().exists(key)
    assert browser.get("/").content == b"home: anonymous"


def test_admin_ends_a_session_and_it_is_audited(forge: ForgedProvider) -> None:
    """An administrator ends someone's session from the SSO sessions admin."""
    from django.contrib.auth import get_user_model

    from secure_sso.testing import force_login

    browser = sign_in(forge)
    admin_user = get_user_model().objects.create_superuser("root", "root@example.test", "x")
    admin_client = Client(SERVER_NAME="localhost")
    force_login(admin_client, admin_user)
    listing = admin_client.get("/admin/secure_sso/ssosession/")
    assert listing.status_code == 200
    assert browser.session.session_key not in listing.content.decode()
    row = SSOSession.objects.get()
    response = admin_client.post(
        "/admin/secure_sso/ssosession/",
        {"action": "end_sessions", "_selected_action": [row.pk]},
    )
    assert response.status_code == 302
    assert not signed_in(browser)
    [event] = AuditEvent.objects.filter(event_type="session.ended_by_admin")
    assert (event.username, event.details["ended_by"]) == (SUB, "root")


def test_a_failing_audit_write_is_503_not_500(forge: ForgedProvider, settings: Any) -> None:
    """The call could not be recorded: the provider is told to retry and nothing is spent,
    but the person's access ends now (fail closed); the retry records it
    (test_retry_after_a_failed_audit_write_is_accepted_and_recorded)."""
    browser = sign_in(forge)
    claims_before = SingleUseValue.objects.count()
    settings.SECURE_SSO_AUDIT = {**settings.SECURE_SSO_AUDIT, "SIGNING_KEYS": {},
                                 "SIGNING_KEY_ID": "missing"}
    response = post(forge.logout_token())
    assert response.status_code == 503
    assert response["Cache-Control"] == "no-store"
    assert json.loads(response.content)["error"] == "temporarily_unavailable"
    assert not signed_in(browser)
    assert SingleUseValue.objects.count() == claims_before


def test_rows_older_than_any_session_are_swept(forge: ForgedProvider, monkeypatch: Any) -> None:
    """The index does not grow forever: a sign-in sweeps rows no session can outlive, also
    in a worker started on a machine that booted 42 seconds ago (``monotonic()`` near 0)."""
    import datetime

    from django.utils import timezone

    from secure_sso import session_index
    from secure_sso.intervals import Every

    first = sign_in(forge, sid="old")
    SSOSession.objects.update(created_at=timezone.now() - datetime.timedelta(days=400))
    # A fresh worker process: nothing swept yet, and the clock counts from the boot.
    monkeypatch.setattr(session_index, "_sweeps", Every(session_index.SWEEP_INTERVAL))
    monkeypatch.setattr(session_index.time, "monotonic", lambda: 42.0)
    sign_in(forge, sid="new")
    assert list(SSOSession.objects.values_list("sid", flat=True)) == ["new"]
    assert first.session.session_key  # its Django session itself is left to the engine


# -- a failed delivery leaves the token usable (issue #10, item 8) ---------------------
#
# The jti is claimed in the transaction that ends the sessions and records the event: a
# failed audit write or database error rolls the claim back (database store) or deletes
# it (cache store), so the provider's retry of the very same token succeeds and is
# recorded, while a token whose logout was recorded stays spent.

STORES = ["database", "cache"]


def use_store(settings: Any, state_store: str) -> None:
    from tests.secure_sso.test_store import LOCMEM, use_cache_store

    if state_store == "cache":
        use_cache_store(settings, LOCMEM)
    else:
        settings.SECURE_SSO = {**settings.SECURE_SSO, "STATE_STORE": "database"}


def jti_claimed(forge: ForgedProvider, token: str, state_store: str) -> bool:
    import base64

    from secure_sso import store

    payload = token.split(".")[1]
    jti = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]
    key = store.digest("jti", f"{forge.issuer}\0{jti}")
    if state_store == "cache":
        from django.core.cache import caches

        return caches["sso-store"].get(f"secure_sso:once:{key}") is not None
    return SingleUseValue.objects.filter(digest=key).exists()


def break_audit(settings: Any) -> Any:
    """Make every audit write fail (no signing key); returns the settings to restore."""
    working = settings.SECURE_SSO_AUDIT
    settings.SECURE_SSO_AUDIT = {**working, "SIGNING_KEYS": {}, "SIGNING_KEY_ID": "missing"}
    return working


def unavailable(response: Any) -> None:
    assert response.status_code == 503, response.content[:300]
    assert response["Cache-Control"] == "no-store"
    assert json.loads(response.content)["error"] == "temporarily_unavailable"


@pytest.mark.parametrize("state_store", STORES)
def test_retry_after_a_failed_audit_write_is_accepted_and_recorded(
    forge: ForgedProvider, settings: Any, state_store: str
) -> None:
    """The first delivery cannot be recorded (503); the provider's retry of the very same
    token is not a replay: 200, the session ends, one success event."""
    use_store(settings, state_store)
    browser = sign_in(forge)
    token = forge.logout_token()
    working = break_audit(settings)
    unavailable(post(token))
    # Rolled back with the failed audit write: the claim and the index row; the session
    # itself ended all the same (access ends even when it cannot be recorded yet).
    assert not jti_claimed(forge, token, state_store)
    assert SSOSession.objects.count() == 1
    assert not signed_in(browser)
    assert events() == []

    settings.SECURE_SSO_AUDIT = working
    response = post(token)
    assert response.status_code == 200, response.content[:300]
    assert not signed_in(browser)
    assert not SSOSession.objects.exists()
    [event] = events()
    assert (event.outcome, event.subject, event.details["sessions_ended"]) == ("success", SUB, 1)
    assert jti_claimed(forge, token, state_store)
    # Once recorded, the token is spent.
    assert refused(post(token)) == "logout_token_replayed"


@pytest.mark.parametrize("state_store", STORES)
def test_a_database_error_mid_logout_leaves_the_token_unspent(
    forge: ForgedProvider, settings: Any, monkeypatch: Any, state_store: str
) -> None:
    """The index delete fails after the Django session was deleted: the index and the claim
    are undone (the jti is not spent), access ends all the same, and the retry records
    the logout."""
    from django.db import OperationalError
    from django.db.models.query import QuerySet

    use_store(settings, state_store)
    browser = sign_in(forge)
    token = forge.logout_token()
    real_delete = QuerySet.delete

    def failing_delete(queryset: Any) -> Any:
        if queryset.model is SSOSession:
            raise OperationalError("database is locked")
        return real_delete(queryset)

    monkeypatch.setattr(QuerySet, "delete", failing_delete)
    unavailable(post(token))
    assert not jti_claimed(forge, token, state_store)
    assert SSOSession.objects.count() == 1
    assert not signed_in(browser)
    assert events() == []

    monkeypatch.setattr(QuerySet, "delete", real_delete)
    assert post(token).status_code == 200
    assert not signed_in(browser)
    [event] = events("success")
    assert event.details["sessions_ended"] == 1


@pytest.mark.parametrize("state_store", STORES)
def test_a_refused_replay_does_not_release_the_claim(
    forge: ForgedProvider, settings: Any, state_store: str
) -> None:
    """A replay raises inside the claim's block; only a claim this call made is released,
    so the third delivery of a recorded token is refused as well."""
    use_store(settings, state_store)
    token = forge.logout_token(sid="first")
    assert post(token).status_code == 200
    browser = sign_in(forge, sid="first")
    assert refused(post(token)) == "logout_token_replayed"
    assert jti_claimed(forge, token, state_store)
    assert refused(post(token)) == "logout_token_replayed"
    assert signed_in(browser)
    assert len(events("success")) == 1
    # (How many refusals are stored is the audit's coalescing policy: not asserted here.)
    assert {e.reason for e in events("failure")} <= {"logout_token_replayed"}


@pytest.mark.parametrize(
    "engine",
    ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db",
     "django.contrib.sessions.backends.cache", "django.contrib.sessions.backends.file"],
)
def test_retry_after_a_failed_audit_write_with_every_session_engine(
    forge: ForgedProvider, settings: Any, tmp_path: Any, engine: str
) -> None:
    """On every engine the session ends at the failed delivery (the database's after the
    rollback, the others at once); the index row comes back, so the retry finds it, ends
    the session again (harmlessly) and records the logout."""
    from importlib import import_module

    settings.SESSION_ENGINE = engine
    settings.SESSION_FILE_PATH = str(tmp_path)
    browser = sign_in(forge)
    key = browser.session.session_key
    store_class = import_module(engine).SessionStore
    token = forge.logout_token()
    working = break_audit(settings)
    unavailable(post(token))
    assert not store_class().exists(key)
    assert SSOSession.objects.count() == 1

    settings.SECURE_SSO_AUDIT = working
    assert post(token).status_code == 200
    assert not store_class().exists(key)
    assert not SSOSession.objects.exists()
    [event] = events()
    assert (event.outcome, event.details["sessions_ended"]) == ("success", 1)


@pytest.mark.django_db(transaction=True)
def test_the_claim_commits_in_the_views_own_transaction(
    forge: ForgedProvider, monkeypatch: Any
) -> None:
    """Under ``ATOMIC_REQUESTS`` the view still runs outside the request's transaction, so
    the claim's block is the outermost one: its commit is the commit (and a failing
    commit is a 503 with the cache claim released, not a 500 after the response)."""
    from django.db import connection

    from secure_sso.signals import backchannel_logout as backchannel_logout_signal

    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    depths: list[int] = []

    def depth(**kwargs: Any) -> None:
        depths.append(len(connection.atomic_blocks))

    sign_in(forge)
    backchannel_logout_signal.connect(depth, dispatch_uid="test.depth")
    try:
        assert post(forge.logout_token()).status_code == 200
    finally:
        backchannel_logout_signal.disconnect(dispatch_uid="test.depth")
    assert depths == [1]
