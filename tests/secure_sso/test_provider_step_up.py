"""Provider step-up (``STEP_UP_METHOD = "provider"``) against a forged provider.

The signed-in account is sent back to the provider with ``prompt=login``, ``max_age=0``
and ``acr_values``; the ID token that comes back must name the same account, carry a
fresh ``auth_time`` and prove a second factor (``acr`` or ``amr``), or the step-up is
refused with a 403 page while the person stays signed in. Nothing is mocked: the forge
is a real HTTP server on loopback and the views are driven through Django's test client.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import AuditEvent
from secure_sso import state, stepup
from secure_sso.constants import (
    SESSION_ISSUER_KEY,
    SESSION_PENDING_KEY,
    SESSION_SUBJECT_KEY,
)
from secure_sso.exceptions import CallbackTampered
from secure_sso.signals import sso_step_up_succeeded
from secure_sso.testing import force_login, session_tokens
from tests.forge import ForgedProvider
from tests.forged_signin import query_of, sign_in

pytestmark = pytest.mark.django_db

STEP_UP_URL = "/sso/step-up/provider/"
CALLBACK_URL = "/sso/callback/"
PROTECTED = "/test/provider-step-up/"
SUB = "forged-user"


# -- fixtures ------------------------------------------------------------------


@pytest.fixture
def sso_settings_extra() -> dict[str, Any]:
    return {"STEP_UP_METHOD": "provider"}


@pytest.fixture
def signed_in(client: Client, forge: ForgedProvider, configure: Any) -> Client:
    """``client`` signed in through the forge as ``SUB``."""
    sign_in(client, forge)
    return client


# -- driving the flows -----------------------------------------------------------


def begin(client: Client, next_url: str | None = PROTECTED) -> dict[str, str]:
    """Start the step-up; the provider URL's query."""
    response = client.get(STEP_UP_URL, {"next": next_url} if next_url else {})
    assert response.status_code == 302, response.content[:500]
    assert "no-store" in response.get("Cache-Control", "")
    return query_of(response["Location"])


def step_up(
    client: Client,
    forge: ForgedProvider,
    claims: dict[str, Any] | None = None,
    *,
    omit: tuple[str, ...] = (),
    sub: str = SUB,
    next_url: str | None = PROTECTED,
) -> Any:
    """A whole step-up whose provider answers with ``claims`` in the ID token."""
    query = begin(client, next_url)
    id_token = forge.id_token(claims, nonce=query["nonce"], sub=sub, omit=omit)
    forge.token_body = forge.token_response_for(id_token)
    return client.get(CALLBACK_URL, forge.callback_params(query["state"]))


def stepped_up(client: Client) -> bool:
    return stepup.has_recent_step_up_at_time(client.session, now=time.time())


def events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("seq"))


def assert_refused(client: Client, response: Any, code: str) -> None:
    """403 page naming ``code``, no step-up, still signed in as ``SUB``, audited."""
    assert response.status_code == 403, response.content[:500]
    assert code in response.content.decode()
    assert "no-store" in response.get("Cache-Control", "")
    assert not stepped_up(client)
    assert client.session[SESSION_SUBJECT_KEY] == SUB
    assert client.get("/dashboard/").content == b"dashboard: forged.user"
    failures = events("mfa.failure")
    assert [(e.reason, e.details.get("method")) for e in failures] == [(code, "provider")]
    assert not events("mfa.success")
    assert not events("auth.login.failure")


# -- the authorization request -----------------------------------------------------


def test_authorization_request_demands_a_fresh_login(signed_in, forge, configure):
    """prompt=login, max_age=0 and the configured acr_values, with state, nonce and PKCE."""
    configure(STEP_UP_ACR_VALUES=["urn:forge:mfa", "urn:forge:hwk"])
    query = begin(signed_in)
    assert query["prompt"] == "login"
    assert query["max_age"] == "0"
    assert query["acr_values"] == "urn:forge:mfa urn:forge:hwk"
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 43 and len(query["nonce"]) >= 43
    assert query["redirect_uri"] == f"http://localhost{CALLBACK_URL}"
    [entry] = [e for e in signed_in.session[SESSION_PENDING_KEY] if e["state"] == query["state"]]
    assert (entry["purpose"], entry["issuer"], entry["subject"]) == ("step_up", forge.issuer, SUB)


def test_no_acr_values_when_none_configured(signed_in):
    query = begin(signed_in)
    assert "acr_values" not in query
    assert (query["prompt"], query["max_age"]) == ("login", "0")


def test_configured_extras_cannot_weaken_the_request(signed_in, configure):
    """EXTRA_AUTHORIZE_PARAMS cannot turn the step-up into a silent or cached login."""
    configure(EXTRA_AUTHORIZE_PARAMS={"prompt": "none", "max_age": "86400", "ui_locales": "fr"})
    query = begin(signed_in)
    assert (query["prompt"], query["max_age"], query["ui_locales"]) == ("login", "0", "fr")


# -- accepted ------------------------------------------------------------------------


def session_id_token(client: Any) -> str:
    return session_tokens(client)["id_token"]


def test_accepted_with_amr_mfa(signed_in, forge):
    """amr ["pwd", "mfa"] proves the factor: the page opens, same user, audited."""
    user_id = signed_in.session["_auth_user_id"]
    old_id_token = session_id_token(signed_in)
    forge.requests_log = []
    response = step_up(signed_in, forge, {"amr": ["pwd", "mfa"]})
    assert response.status_code == 302, response.content[:500]
    assert response["Location"] == PROTECTED
    assert stepped_up(signed_in)
    assert signed_in.session[stepup.SESSION_STEP_UP_KEY]["method"] == "provider"
    assert signed_in.session["_auth_user_id"] == user_id
    assert session_id_token(signed_in) != old_id_token
    assert signed_in.get(PROTECTED).content == b"stepped up: forged.user"
    # No second sign-in: no new user, no login event, no userinfo call.
    assert get_user_model().objects.count() == 1
    assert len(events("auth.login.success")) == 1
    assert forge.requests_to("/userinfo") == []
    [success] = events("mfa.success")
    assert (success.outcome, success.subject, success.issuer) == ("success", SUB, forge.issuer)
    assert success.details["method"] == "provider"
    assert success.details["amr"] == ["pwd", "mfa"]
    assert str(success.user_id) == user_id


def test_accepted_with_a_configured_acr(signed_in, forge, configure):
    configure(STEP_UP_ACR_VALUES=["urn:forge:mfa"])
    response = step_up(signed_in, forge, {"acr": "urn:forge:mfa"})
    assert response.status_code == 302 and response["Location"] == PROTECTED
    assert stepped_up(signed_in)
    assert events("mfa.success")[0].details["acr"] == "urn:forge:mfa"


def test_amr_names_from_the_setting(signed_in, forge, configure):
    configure(STEP_UP_AMR=["hwk"])
    response = step_up(signed_in, forge, {"amr": ["pwd", "hwk"]})
    assert response.status_code == 302 and stepped_up(signed_in)


def test_auth_time_within_clock_skew_of_the_start_is_fresh(signed_in, forge):
    response = step_up(signed_in, forge, {"amr": ["mfa"], "auth_time": int(time.time()) - 30})
    assert response.status_code == 302 and stepped_up(signed_in)


def test_foreign_next_falls_back(signed_in, forge):
    response = step_up(signed_in, forge, {"amr": ["otp"]}, next_url="https://evil.test/")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


# -- refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"amr": ["pwd"]},
        {"amr": []},
        {"amr": "mfa"},
        {"amr": [["mfa"]]},
        {"amr": None, "acr": "urn:forge:pwd"},
        # An acr proves nothing while STEP_UP_ACR_VALUES is empty.
        {"acr": "urn:forge:mfa"},
        {"acr": ["urn:forge:mfa"]},
    ],
    ids=["nothing", "pwd", "empty-amr", "amr-string", "nested-amr", "other-acr", "acr-unset",
         "acr-list"],
)
def test_refused_without_the_required_acr_or_amr(signed_in, forge, claims):
    """No accepted acr and no accepted amr: a 403 page, no step-up, an mfa.failure."""
    response = step_up(signed_in, forge, claims)
    assert_refused(signed_in, response, "step_up_not_proven")
    assert signed_in.get(PROTECTED).status_code == 302


def test_refused_when_acr_is_not_one_of_the_configured(signed_in, forge, configure):
    configure(STEP_UP_ACR_VALUES=["urn:forge:mfa"], STEP_UP_AMR=[])
    response = step_up(signed_in, forge, {"acr": "urn:forge:pwd", "amr": ["mfa"]})
    assert_refused(signed_in, response, "step_up_not_proven")


@pytest.mark.parametrize(
    ("claims", "omit"),
    [
        ({}, ("auth_time",)),
        ({"auth_time": "now"}, ()),
        ({"auth_time": True}, ()),
        # An authentication from before the step-up started (beyond CLOCK_SKEW).
        ({"auth_time": int(time.time()) - 3600}, ()),
        ({"auth_time": int(time.time()) + 3600}, ()),
    ],
    ids=["missing", "string", "bool", "before-start", "future"],
)
def test_refused_without_a_fresh_auth_time(signed_in, forge, claims, omit):
    response = step_up(signed_in, forge, {"amr": ["mfa"], **claims}, omit=omit)
    assert_refused(signed_in, response, "step_up_not_fresh")


def test_auth_time_before_the_start_is_measured_from_the_start(signed_in, forge, configure):
    """Freshness counts from the step-up's start, with CLOCK_SKEW and nothing more."""
    configure(CLOCK_SKEW=5)
    response = step_up(signed_in, forge, {"amr": ["mfa"], "auth_time": int(time.time()) - 30})
    assert_refused(signed_in, response, "step_up_not_fresh")


def test_refused_when_another_account_answers(signed_in, forge):
    """A second factor of a different account cannot step this one up."""
    response = step_up(signed_in, forge, {"amr": ["mfa"]}, sub="someone-else")
    assert_refused(signed_in, response, "step_up_wrong_account")
    assert get_user_model().objects.count() == 1


def test_anonymous_visitors_sign_in_first(client, configure):
    response = client.get(STEP_UP_URL, {"next": PROTECTED})
    assert response.status_code == 302
    assert response["Location"].startswith("/sso/login/?next=")
    assert SESSION_PENDING_KEY not in client.session


def test_password_session_cannot_step_up_at_the_provider(client, configure):
    """A session that did not sign in through the provider has nothing to step up there."""
    user = get_user_model().objects.create_user("local", password="x")  # noqa: S106
    force_login(client, user, "django.contrib.auth.backends.ModelBackend")
    response = client.get(STEP_UP_URL, {"next": PROTECTED})
    assert response.status_code == 403
    assert "step_up_unavailable" in response.content.decode()
    assert SESSION_PENDING_KEY not in client.session
    assert [e.reason for e in events("mfa.failure")] == ["step_up_unavailable"]


def test_refused_when_the_session_is_not_signed_in_any_more(client, forge, configure):
    """A step-up callback reaching a session that is not (or no longer) the account that
    started it is refused before the code is spent."""
    pending = state.new_pending_login_at_time(
        redirect_uri=f"http://localhost{CALLBACK_URL}",
        next_url=PROTECTED,
        now=time.time(),
        purpose=state.PURPOSE_STEP_UP,
        issuer=forge.issuer,
        subject=SUB,
    )
    session = client.session
    state.store(session, pending, ttl=600, limit=5)
    session.save()
    forge.token_body = forge.token_response_for(
        forge.id_token({"amr": ["mfa"]}, nonce=pending.nonce)
    )
    response = client.get(CALLBACK_URL, forge.callback_params(pending.state))
    assert response.status_code == 403
    assert "step_up_session_changed" in response.content.decode()
    assert forge.requests_to("/token") == []
    assert "_auth_user_id" not in client.session
    assert not stepped_up(client)
    assert [e.reason for e in events("mfa.failure")] == ["step_up_session_changed"]


def test_refused_when_the_session_changed_account(signed_in, forge):
    """The session's SSO identity is not the one the step-up was started for."""
    query = begin(signed_in)
    session = signed_in.session
    session[SESSION_SUBJECT_KEY] = "someone-else"
    session.save()
    forge.requests_log = []
    forge.token_body = forge.token_response_for(
        forge.id_token({"amr": ["mfa"]}, nonce=query["nonce"])
    )
    response = signed_in.get(CALLBACK_URL, forge.callback_params(query["state"]))
    assert response.status_code == 403
    assert "step_up_session_changed" in response.content.decode()
    assert forge.requests_to("/token") == []
    assert not stepped_up(signed_in)


def test_provider_error_is_an_mfa_failure(signed_in, forge):
    """access_denied at the provider during a step-up: 403, still signed in, mfa.failure."""
    query = begin(signed_in)
    response = signed_in.get(
        CALLBACK_URL, forge.callback_params(query["state"], code=None, error="access_denied")
    )
    assert_refused(signed_in, response, "access_denied")


def test_invalid_id_token_is_an_mfa_failure(signed_in, forge):
    query = begin(signed_in)
    forge.token_body = forge.token_response_for(forge.id_token({"amr": ["mfa"]}, nonce="other"))
    response = signed_in.get(CALLBACK_URL, forge.callback_params(query["state"]))
    assert response.status_code == 400
    assert not stepped_up(signed_in)
    assert [e.reason for e in events("mfa.failure")] == ["id_token_nonce_invalid"]
    assert not events("auth.login.failure")


def test_replayed_step_up_callback_is_refused(signed_in, forge):
    query = begin(signed_in)
    forge.token_body = forge.token_response_for(
        forge.id_token({"amr": ["mfa"]}, nonce=query["nonce"])
    )
    params = forge.callback_params(query["state"])
    assert signed_in.get(CALLBACK_URL, params).status_code == 302
    signed_in.session.pop(stepup.SESSION_STEP_UP_KEY, None)
    replay = signed_in.get(CALLBACK_URL, params)
    assert replay.status_code == 400
    assert "state_mismatch" in replay.content.decode()


def test_step_up_that_cannot_be_recorded_does_not_count(signed_in, forge):
    """A failing sso_step_up_succeeded receiver (the audit write) refuses the step-up."""

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("audit store down")

    sso_step_up_succeeded.connect(broken, dispatch_uid="test.broken")
    try:
        response = step_up(signed_in, forge, {"amr": ["mfa"]})
    finally:
        sso_step_up_succeeded.disconnect(dispatch_uid="test.broken")
    assert response.status_code == 503
    assert not stepped_up(signed_in)
    # As after any 5xx, Django does not save the session the step-up rotated: the
    # browser is signed out, and the page stays locked.
    assert signed_in.get(PROTECTED).status_code == 302
    assert [e.reason for e in events("mfa.failure")] == ["audit_unavailable"]


# -- per session -------------------------------------------------------------------------


def test_step_up_is_per_session(forge, configure):
    """Another session of the same account still needs its own step-up."""
    first, second = Client(SERVER_NAME="localhost"), Client(SERVER_NAME="localhost")
    sign_in(first, forge)
    sign_in(second, forge)
    assert first.session["_auth_user_id"] == second.session["_auth_user_id"]
    response = step_up(first, forge, {"amr": ["mfa"]})
    assert response.status_code == 302
    assert first.get(PROTECTED).status_code == 200
    assert stepped_up(first)
    assert not stepped_up(second)
    assert second.get(PROTECTED).status_code == 302


def test_step_up_rotates_the_session_key(signed_in, forge):
    before = signed_in.cookies["sessionid"].value
    step_up(signed_in, forge, {"amr": ["mfa"]})
    assert signed_in.cookies["sessionid"].value != before
    assert signed_in.session[SESSION_ISSUER_KEY] == forge.issuer


# -- pending entries -------------------------------------------------------------------------


def test_pending_entries_from_before_purpose_read_as_sign_ins():
    """Sessions written by an older version (no purpose/issuer/subject) still work."""
    now = time.time()
    entry = {"state": "s" * 43, "nonce": "n", "code_verifier": "v", "redirect_uri": "r",
             "next_url": "/", "created_at": now}
    session: dict[str, Any] = {SESSION_PENDING_KEY: [entry]}
    pending = state.consume_at_time(session, "s" * 43, now=now, ttl=600)
    assert pending.purpose == "login" and not pending.is_step_up


@pytest.mark.parametrize(
    "change",
    [{"purpose": "admin"}, {"purpose": ["step_up"]}, {"purpose": "step_up"},
     {"purpose": "step_up", "issuer": "i"}, {"purpose": "login", "subject": 5}],
)
def test_unreadable_pending_purposes_are_refused(change):
    now = time.time()
    entry = {"state": "s" * 43, "nonce": "n", "code_verifier": "v", "redirect_uri": "r",
             "next_url": "/", "created_at": now, **change}
    with pytest.raises(CallbackTampered):
        state.consume_at_time({SESSION_PENDING_KEY: [entry]}, "s" * 43, now=now, ttl=600)


def test_step_up_pending_needs_the_account():
    with pytest.raises(ValueError, match="step-up"):
        state.new_pending_login_at_time(
            redirect_uri="r", next_url="/", now=time.time(), purpose=state.PURPOSE_STEP_UP
        )
