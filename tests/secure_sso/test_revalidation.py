"""Re-validation every ``REVALIDATE_AFTER`` seconds (``SessionGuardMiddleware``).

A due session is sent through the provider with ``prompt=none`` on its next page
navigation, or refreshed through the token endpoint when it has a refresh token; the
provider saying "not signed in" (or naming another account) ends it. Requests that
cannot be redirected get one period of grace, then a 401 page. The session is made due
by moving its validated stamp back; the forge is a real HTTP server on loopback.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from secure_sso.constants import SESSION_SUBJECT_KEY, SESSION_VALIDATED_KEY
from secure_sso.models import SSOSession
from secure_sso.testing import session_tokens
from tests.forge import ForgedProvider
from tests.forged_signin import query_of, sign_in

pytestmark = pytest.mark.django_db

SUB = "forged-user"
PERIOD = 60
NAVIGATE = {"HTTP_SEC_FETCH_MODE": "navigate", "HTTP_ACCEPT": "text/html"}
HTML = {"HTTP_ACCEPT": "text/html,application/xhtml+xml"}
FETCH = {"HTTP_SEC_FETCH_MODE": "cors", "HTTP_ACCEPT": "text/html"}


@pytest.fixture
def sso_settings_extra() -> dict[str, Any]:
    return {"REVALIDATE_AFTER": PERIOD}


@pytest.fixture
def signed_in(client: Client, forge: ForgedProvider, configure: Any) -> Client:
    sign_in(client, forge)
    return client


def validated_ago(client: Client, seconds: float) -> float:
    """Move the session's validated stamp ``seconds`` into the past; the new stamp."""
    session = client.session
    stamp = int(time.time() - seconds)
    session[SESSION_VALIDATED_KEY] = stamp
    session.save()
    return stamp


def events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("seq"))


def assert_signed_out(client: Client) -> None:
    assert "_auth_user_id" not in client.session
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/sso/login/")


def start_revalidation(client: Client, forge: ForgedProvider, path: str = "/dashboard/") -> dict:
    """A due navigation to ``path``: the redirect to the provider, its query."""
    response = client.get(path, **NAVIGATE)
    assert response.status_code == 302, response.content[:300]
    location = response["Location"]
    assert location.startswith(forge.issuer + "/authorize?")
    assert "no-store" in response["Cache-Control"]
    return query_of(location)


# -- when it happens ------------------------------------------------------------------


def test_not_due_no_redirect(signed_in: Client) -> None:
    validated_ago(signed_in, PERIOD - 5)
    response = signed_in.get("/dashboard/", **NAVIGATE)
    assert response.status_code == 200
    assert response.content == b"dashboard: forged.user"


@pytest.mark.parametrize("headers", [NAVIGATE, HTML], ids=["sec-fetch-navigate", "accept-html"])
def test_due_navigation_goes_to_the_provider_with_prompt_none(
    signed_in: Client, forge: ForgedProvider, headers: dict[str, str]
) -> None:
    validated_ago(signed_in, PERIOD + 1)
    response = signed_in.get("/dashboard/?tab=2", **headers)
    assert response.status_code == 302
    query = query_of(response["Location"])
    assert response["Location"].startswith(forge.issuer + "/authorize?")
    assert query["prompt"] == "none"
    assert query["redirect_uri"] == "http://localhost/sso/callback/"
    assert query["client_id"] == forge.client_id
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 43 and query["nonce"]
    # Still signed in until the provider answers.
    assert signed_in.session[SESSION_SUBJECT_KEY] == SUB


def test_validated_stamp_missing_is_due_now(signed_in: Client, forge: ForgedProvider) -> None:
    """A session signed in before re-validation was switched on is checked at once."""
    session = signed_in.session
    del session[SESSION_VALIDATED_KEY]
    session.save()
    start_revalidation(signed_in, forge)


def test_off_when_zero(signed_in: Client, configure: Any) -> None:
    configure(REVALIDATE_AFTER=0)
    validated_ago(signed_in, 10 * 86400)
    assert signed_in.get("/dashboard/", **NAVIGATE).status_code == 200
    assert signed_in.post("/test/form/").status_code == 200


# -- the provider's answer ---------------------------------------------------------------


def test_login_required_ends_the_session(signed_in: Client, forge: ForgedProvider) -> None:
    session_key = signed_in.session.session_key
    validated_ago(signed_in, PERIOD + 1)
    query = start_revalidation(signed_in, forge, "/dashboard/?tab=2")
    response = signed_in.get(
        "/sso/callback/",
        forge.callback_params(query["state"], code=None, error="login_required"),
        **NAVIGATE,
    )
    assert response.status_code == 302
    assert response["Location"] == "/sso/login/?next=%2Fdashboard%2F%3Ftab%3D2"
    assert not SSOSession.objects.filter(session_key=session_key).exists()
    [event] = events("session.revalidation_failed")
    assert event.reason == "login_required"
    assert event.username == "forged.user"
    assert forge.requests_to("/token")[-1].params.get("grant_type") == "authorization_code"
    assert len(forge.requests_to("/token")) == 1  # the sign-in's only: no code was spent
    assert_signed_out(signed_in)


def test_same_account_confirmed_lands_on_the_original_page(
    signed_in: Client, forge: ForgedProvider
) -> None:
    old_stamp = validated_ago(signed_in, PERIOD + 1)
    query = start_revalidation(signed_in, forge, "/dashboard/?tab=2")
    forge.token_body = forge.token_response_for(
        forge.id_token(nonce=query["nonce"]), access_token="at-after-revalidation"
    )
    before = time.time()
    response = signed_in.get("/sso/callback/", forge.callback_params(query["state"]), **NAVIGATE)
    assert response.status_code == 302, response.content[:300]
    assert response["Location"] == "/dashboard/?tab=2"
    stamp = signed_in.session[SESSION_VALIDATED_KEY]
    assert stamp > old_stamp and stamp >= int(before)
    [event] = events("session.revalidated")
    assert event.details.get("method") == "prompt_none"
    assert session_tokens(signed_in)["access_token"] == "at-after-revalidation"
    # Not due any more: the page is served.
    assert signed_in.get("/dashboard/?tab=2", **NAVIGATE).content == b"dashboard: forged.user"


def test_another_account_is_refused_and_ends_the_session(
    signed_in: Client, forge: ForgedProvider
) -> None:
    validated_ago(signed_in, PERIOD + 1)
    query = start_revalidation(signed_in, forge)
    forge.token_body = forge.token_response_for(
        forge.id_token(nonce=query["nonce"], sub="someone-else")
    )
    response = signed_in.get("/sso/callback/", forge.callback_params(query["state"]), **NAVIGATE)
    assert response.status_code == 403
    [event] = events("session.revalidation_failed")
    assert event.reason == "account_changed"
    assert events("session.revalidated") == []
    assert_signed_out(signed_in)


def test_revalidation_state_is_single_use(signed_in: Client, forge: ForgedProvider) -> None:
    validated_ago(signed_in, PERIOD + 1)
    query = start_revalidation(signed_in, forge)
    forge.token_body = forge.token_response_for(forge.id_token(nonce=query["nonce"]))
    params = forge.callback_params(query["state"])
    assert signed_in.get("/sso/callback/", params).status_code == 302
    replay = signed_in.get("/sso/callback/", params)
    assert replay.status_code == 400
    assert len(events("session.revalidated")) == 1


# -- requests that cannot be redirected -----------------------------------------------------


def test_post_within_grace_passes(signed_in: Client) -> None:
    validated_ago(signed_in, PERIOD + 10)
    response = signed_in.post("/test/form/")
    assert response.status_code == 200
    assert response.content == b"POST: forged.user"


@pytest.mark.parametrize("method", ["post", "fetch"])
def test_past_twice_the_period_is_refused_with_401(signed_in: Client, method: str) -> None:
    validated_ago(signed_in, 2 * PERIOD + 1)
    if method == "post":
        response = signed_in.post("/test/form/")
    else:
        response = signed_in.get("/dashboard/", **FETCH)
    assert response.status_code == 401
    assert "secure_sso/revalidate.html" in [t.name for t in response.templates]
    assert "no-store" in response["Cache-Control"]
    # Not signed out: the next page navigation re-validates.
    assert signed_in.session[SESSION_SUBJECT_KEY] == SUB


def test_fetch_within_grace_passes(signed_in: Client) -> None:
    validated_ago(signed_in, PERIOD + 10)
    assert signed_in.get("/dashboard/", **FETCH).status_code == 200


# -- the package's own URLs ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/sso/logout/", "/sso/callback/?state=unknown"])
def test_package_urls_are_never_interrupted(
    signed_in: Client, forge: ForgedProvider, path: str
) -> None:
    validated_ago(signed_in, 3 * PERIOD)
    response = signed_in.get(path, **NAVIGATE)
    assert not (response.status_code == 302
                and response["Location"].startswith(forge.issuer + "/authorize"))
    assert response.status_code in (200, 400)


def test_logout_post_when_long_overdue_still_signs_out(signed_in: Client) -> None:
    validated_ago(signed_in, 3 * PERIOD)
    response = signed_in.post("/sso/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in signed_in.session


# -- with refresh tokens ------------------------------------------------------------------


def test_refresh_token_path_needs_no_redirect(
    client: Client, forge: ForgedProvider, configure: Any
) -> None:
    configure(REFRESH_TOKENS=True)
    sign_in(client, forge, refresh_token="rt-1", expires_in=3600)
    old_stamp = validated_ago(client, PERIOD + 1)
    forge.token_body = {"access_token": "at-2", "token_type": "Bearer", "expires_in": 3600,
                        "refresh_token": "rt-2"}
    # A POST too: the refresh needs no browser hop.
    response = client.post("/test/form/")
    assert response.status_code == 200
    [sent] = [r.params for r in forge.requests_to("/token")
              if r.params.get("grant_type") == "refresh_token"]
    assert sent["refresh_token"] == "rt-1"
    assert client.session[SESSION_VALIDATED_KEY] > old_stamp
    assert session_tokens(client)["refresh_token"] == "rt-2"
    [event] = events("session.revalidated")
    assert event.details.get("method") == "refresh"


def test_refresh_refused_ends_the_session(
    client: Client, forge: ForgedProvider, configure: Any
) -> None:
    configure(REFRESH_TOKENS=True)
    sign_in(client, forge, refresh_token="rt-1", expires_in=3600)
    validated_ago(client, PERIOD + 1)
    forge.token_body = None  # invalid_grant: revoked at the provider
    response = client.get("/dashboard/", **NAVIGATE)
    assert response.status_code == 302
    assert response["Location"] == "/sso/login/?next=%2Fdashboard%2F"
    [event] = events("session.refresh_refused")
    assert event.reason == "refresh_refused"
    assert_signed_out(client)


def test_refresh_unreachable_gets_grace_then_401(
    client: Client, forge: ForgedProvider, configure: Any
) -> None:
    configure(REFRESH_TOKENS=True)
    sign_in(client, forge, refresh_token="rt-1", expires_in=3600)
    validated_ago(client, PERIOD + 1)
    forge.token_body = {"error": "temporarily_unavailable"}
    forge.token_status = 503
    assert client.get("/dashboard/", **NAVIGATE).status_code == 200  # grace
    validated_ago(client, 2 * PERIOD + 1)
    assert client.get("/dashboard/", **NAVIGATE).status_code == 401
    assert client.session[SESSION_SUBJECT_KEY] == SUB
    assert events("session.refresh_refused") == []
