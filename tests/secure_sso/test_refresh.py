"""Refreshing the session's tokens (``REFRESH_TOKENS``) against a forged provider.

``/test/access-token/`` calls ``tokens.get_access_token(request)`` and answers the
sha256 of the token. Sign-in answers carry ``expires_in`` 30 while the default
``REFRESH_BEFORE_EXPIRY`` is 60: every token is due for a refresh as soon as it is kept.
Nothing is mocked: the forge is a real HTTP server on loopback.
"""

from __future__ import annotations

import hashlib
import itertools
import socket
import time
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from secure_sso.client import reset_provider_cache
from secure_sso.constants import SESSION_SUBJECT_KEY
from secure_sso.exceptions import ReauthenticationRequired
from secure_sso.models import SSOSession
from secure_sso.testing import session_tokens
from tests.forge import ForgedProvider, client_auth_method
from tests.forged_signin import query_of, sign_in

pytestmark = pytest.mark.django_db

SUB = "forged-user"
TOKEN_VIEW = "/test/access-token/"


@pytest.fixture
def sso_settings_extra() -> dict[str, Any]:
    return {"HTTP_TIMEOUT": 1, "REFRESH_TOKENS": True}


@pytest.fixture
def signed_in(client: Client, forge: ForgedProvider, configure: Any) -> Client:
    sign_in(client, forge, refresh_token="rt-1", expires_in=30)
    return client


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def rotating(forge: ForgedProvider, *, rotate: bool = True, id_token: Any = None) -> None:
    """The token endpoint answers refreshes with at-N (and rt-N when rotating)."""
    counter = itertools.count(2)

    def answer(form: dict[str, str]) -> dict[str, Any]:
        assert form.get("grant_type") == "refresh_token", form
        n = next(counter)
        body: dict[str, Any] = {"access_token": f"at-{n}", "token_type": "Bearer",
                                "expires_in": 30}
        if rotate:
            body["refresh_token"] = f"rt-{n}"
        if id_token is not None:
            body["id_token"] = id_token() if callable(id_token) else id_token
        return body

    forge.token_body = answer


def refreshes(forge: ForgedProvider) -> list[dict[str, str]]:
    return [r.params for r in forge.requests_to("/token")
            if r.params.get("grant_type") == "refresh_token"]


def assert_signed_out(client: Client) -> None:
    assert "_auth_user_id" not in client.session
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/sso/login/")


def events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("seq"))


# -- the authorization request -------------------------------------------------------


def test_offline_access_asked_when_refresh_is_on(
    client: Client, forge: ForgedProvider, configure: Any
) -> None:
    scope = query_of(client.get("/sso/login/")["Location"])["scope"].split()
    assert scope[0] == "openid"
    assert "offline_access" in scope
    configure(REFRESH_TOKENS=False)
    scope = query_of(client.get("/sso/login/")["Location"])["scope"].split()
    assert "offline_access" not in scope


# -- a successful refresh ---------------------------------------------------------------


def test_expired_access_token_is_refreshed_with_rotation(
    signed_in: Client, forge: ForgedProvider
) -> None:
    rotating(forge)
    response = signed_in.get(TOKEN_VIEW)
    assert response.status_code == 200
    assert response.content.decode() == sha("at-2")
    [sent] = refreshes(forge)
    assert sent["refresh_token"] == "rt-1"
    assert client_auth_method(forge.requests_to("/token")[-1]) == "client_secret_basic"
    kept = session_tokens(signed_in)
    assert kept["access_token"] == "at-2"
    assert kept["refresh_token"] == "rt-2"  # the rotated one, for the next refresh
    assert kept["id_token"]  # the sign-in's ID token is kept for id_token_hint

    # The next refresh sends the rotated token, never the spent one.
    response = signed_in.get(TOKEN_VIEW)
    assert response.content.decode() == sha("at-3")
    assert [p["refresh_token"] for p in refreshes(forge)] == ["rt-1", "rt-2"]
    assert session_tokens(signed_in)["refresh_token"] == "rt-3"


def test_two_refreshes_never_reuse_a_refresh_token(
    signed_in: Client, forge: ForgedProvider
) -> None:
    rotating(forge)
    for _ in range(4):
        assert signed_in.get(TOKEN_VIEW).status_code == 200
    sent = [p["refresh_token"] for p in refreshes(forge)]
    assert sent == ["rt-1", "rt-2", "rt-3", "rt-4"]
    assert len(set(sent)) == len(sent)


def test_non_rotating_provider_keeps_the_old_refresh_token(
    signed_in: Client, forge: ForgedProvider
) -> None:
    rotating(forge, rotate=False)
    assert signed_in.get(TOKEN_VIEW).content.decode() == sha("at-2")
    assert session_tokens(signed_in)["refresh_token"] == "rt-1"
    assert signed_in.get(TOKEN_VIEW).content.decode() == sha("at-3")
    assert [p["refresh_token"] for p in refreshes(forge)] == ["rt-1", "rt-1"]


def test_fresh_access_token_is_not_refreshed(
    client: Client, forge: ForgedProvider, configure: Any
) -> None:
    sign_in(client, forge, refresh_token="rt-1", expires_in=3600)
    rotating(forge)
    response = client.get(TOKEN_VIEW)
    assert response.status_code == 200
    assert response.content.decode() == sha(session_tokens(client)["access_token"])
    assert refreshes(forge) == []


def test_refresh_with_id_token_for_same_sub_keeps_it(
    signed_in: Client, forge: ForgedProvider
) -> None:
    new_id_token = forge.id_token({"refreshed": True})
    rotating(forge, id_token=new_id_token)
    assert signed_in.get(TOKEN_VIEW).status_code == 200
    assert session_tokens(signed_in)["id_token"] == new_id_token


# -- refusals end the session --------------------------------------------------------------


def test_invalid_grant_ends_the_session(signed_in: Client, forge: ForgedProvider) -> None:
    session_key = signed_in.session.session_key
    forge.token_body = None  # 400 invalid_grant
    response = signed_in.get(TOKEN_VIEW)
    # SessionGuardMiddleware.process_exception: sign in again, back to this page.
    assert response.status_code == 302
    assert response["Location"] == "/sso/login/?next=%2Ftest%2Faccess-token%2F"
    assert "no-store" in response["Cache-Control"]
    assert len(refreshes(forge)) == 1
    assert not SSOSession.objects.filter(session_key=session_key).exists()
    [event] = events("session.refresh_refused")
    assert event.outcome == "failure"
    assert event.reason == "refresh_refused"
    assert event.username == "forged.user"
    assert_signed_out(signed_in)


def test_refusal_on_post_is_a_session_ended_page(
    signed_in: Client, forge: ForgedProvider
) -> None:
    forge.token_body = None
    response = signed_in.post(TOKEN_VIEW)
    assert response.status_code == 403
    assert_signed_out(signed_in)


def test_refreshed_id_token_for_another_sub_ends_the_session(
    signed_in: Client, forge: ForgedProvider
) -> None:
    rotating(forge, id_token=lambda: forge.id_token(sub="someone-else"))
    response = signed_in.get(TOKEN_VIEW)
    assert response.status_code == 302
    assert response["Location"].startswith("/sso/login/?next=")
    [event] = events("session.refresh_refused")
    assert event.reason == "id_token_sub_changed"
    assert_signed_out(signed_in)


def test_refreshed_id_token_with_a_bad_signature_ends_the_session(
    signed_in: Client, forge: ForgedProvider
) -> None:
    rotating(forge, id_token=lambda: forge.id_token(key=forge.wrong_key()))
    assert signed_in.get(TOKEN_VIEW).status_code == 302
    assert len(events("session.refresh_refused")) == 1
    assert_signed_out(signed_in)


def test_no_refresh_token_ends_the_session_when_expired(
    client: Client, forge: ForgedProvider, configure: Any, time_machine: Any
) -> None:
    """Refresh on, but the provider gave no refresh token: an expired token means sign in."""
    sign_in(client, forge, expires_in=120)
    # Within REFRESH_BEFORE_EXPIRY but not expired: the current token is still served.
    time_machine.move_to(time.time() + 70)
    assert client.get(TOKEN_VIEW).status_code == 200
    time_machine.move_to(time.time() + 60)
    assert_ended_for_an_expired_token(client, forge)


def assert_ended_for_an_expired_token(client: Client, forge: ForgedProvider) -> None:
    """Sent to sign in, nothing refreshed; the session that could no longer call APIs was
    ended, and that is on record."""
    response = client.get(TOKEN_VIEW)
    assert response.status_code == 302
    assert response["Location"].startswith("/sso/login/")
    assert refreshes(forge) == []
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(
        event_type="session.refresh_refused", reason="access_token_expired"
    ).exists()


# -- the provider cannot be reached: the session stays ------------------------------------


@pytest.mark.parametrize("failure", ["503", "delay", "html"])
def test_provider_unavailable_keeps_the_session(
    signed_in: Client, forge: ForgedProvider, failure: str
) -> None:
    before = session_tokens(signed_in)
    if failure == "503":
        forge.token_body = {"error": "temporarily_unavailable"}
        forge.token_status = 503
    elif failure == "delay":
        rotating(forge)
        forge.delay["token"] = 3  # HTTP_TIMEOUT is 1
    else:
        forge.token_body = "<html>rate limited</html>"
        forge.token_status = 429
    # A clear page (never a 500), and the session stays.
    page = signed_in.get(TOKEN_VIEW)
    assert page.status_code == 502 and b"provider_unavailable" in page.content
    assert signed_in.session[SESSION_SUBJECT_KEY] == SUB
    assert session_tokens(signed_in) == before  # nothing spent, nothing lost
    assert events("session.refresh_refused") == []
    assert signed_in.get("/dashboard/").status_code == 200

    # Back up: the same refresh token is used, and works.
    forge.reset()
    rotating(forge)
    assert signed_in.get(TOKEN_VIEW).content.decode() == sha("at-2")
    assert refreshes(forge)[-1]["refresh_token"] == "rt-1"


def test_provider_down_keeps_the_session(
    client: Client, forge: ForgedProvider, configure: Any
) -> None:
    """The token endpoint does not answer at all (connection refused)."""
    sign_in(client, forge, refresh_token="rt-1", expires_in=30)
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Discovery still answers, but names a token endpoint that refuses connections.
    forge.metadata = {**forge.default_metadata(),
                      "token_endpoint": f"http://127.0.0.1:{port}/token"}
    reset_provider_cache()
    assert client.get(TOKEN_VIEW).status_code == 502
    assert client.session[SESSION_SUBJECT_KEY] == SUB
    assert session_tokens(client)["refresh_token"] == "rt-1"


# -- refresh off ---------------------------------------------------------------------------


def test_refresh_off_expired_token_requires_sign_in(
    client: Client, forge: ForgedProvider, configure: Any, time_machine: Any
) -> None:
    configure(REFRESH_TOKENS=False)
    sign_in(client, forge, refresh_token="rt-1", expires_in=120)
    assert client.get(TOKEN_VIEW).status_code == 200  # due soon, not expired: served
    time_machine.move_to(time.time() + 130)
    from django.test import RequestFactory

    from secure_sso import tokens

    request = RequestFactory().get(TOKEN_VIEW)
    request.session = client.session
    with pytest.raises(ReauthenticationRequired):
        tokens.get_access_token(request)
    assert_ended_for_an_expired_token(client, forge)


def test_refresh_follows_no_redirect(
    signed_in: Client, forge: ForgedProvider
) -> None:
    """A 307 from the token endpoint would re-send the refresh token and the client secret
    to wherever it points: it is not followed, and the session stays."""
    forge.token_body = {}
    forge.token_status = 307
    forge.token_headers = {"Location": f"{forge.issuer}/elsewhere"}
    page = signed_in.get(TOKEN_VIEW)
    assert page.status_code == 502
    assert forge.requests_to("/elsewhere") == []
    assert signed_in.session[SESSION_SUBJECT_KEY] == SUB
