"""RP-initiated logout with the ``state`` round trip, against a forged provider.

POST /sso/logout/ ends the local session and sends the browser to the provider's
``end_session_endpoint`` with ``id_token_hint``, ``post_logout_redirect_uri``,
``client_id`` and a fresh ``state``; /sso/logout/complete/ restores the landing page
chosen at logout only for that state (once, within ``PENDING_LOGIN_TTL``), otherwise
lands on ``LOGOUT_REDIRECT_URL`` (conformance oidcc-client-test-rp-init-logout-other-state
and -no-state). Nothing is mocked: the forge is a real HTTP server on loopback.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.http import HttpRequest
from django.test import Client

from audit.models import AuditEvent
from secure_sso import client as sso_client
from secure_sso.adapter import DefaultSSOAdapter
from secure_sso.client import ProviderMetadata
from secure_sso.conf import sso_settings
from secure_sso.constants import SESSION_SUBJECT_KEY
from secure_sso.models import SSOSession
from secure_sso.testing import session_tokens
from tests.forge import ForgedProvider
from tests.forged_signin import query_of, sign_in

pytestmark = pytest.mark.django_db

SUB = "forged-user"
LANDING = "/goodbye/"


class LandingAdapter(DefaultSSOAdapter):
    """Lands on the POSTed ``next`` after logout (the page chosen at logout)."""

    def get_logout_redirect_url(self, request: HttpRequest) -> str:
        return request.POST.get("next") or super().get_logout_redirect_url(request)


@pytest.fixture
def sso_settings_extra() -> dict[str, Any]:
    return {"ADAPTER": f"{__name__}.LandingAdapter"}


@pytest.fixture
def signed_in(client: Client, forge: ForgedProvider, configure: Any) -> Client:
    sign_in(client, forge)
    return client


def log_out(client: Client, forge: ForgedProvider, next_url: str = LANDING) -> dict[str, str]:
    """POST /sso/logout/; the end-session URL's query."""
    response = client.post("/sso/logout/", {"next": next_url})
    assert response.status_code == 302, response.content[:300]
    assert response["Location"].startswith(forge.issuer + "/logout?")
    assert "no-store" in response["Cache-Control"]
    assert "_auth_user_id" not in client.session
    return query_of(response["Location"])


def complete(client: Client, **params: str) -> Any:
    response = client.get("/sso/logout/complete/", params)
    assert response.status_code == 302
    assert "no-store" in response["Cache-Control"]
    return response


# -- the end-session request --------------------------------------------------------


def test_end_session_url_parameters(signed_in: Client, forge: ForgedProvider) -> None:
    id_token = session_tokens(signed_in)["id_token"]
    session_key = signed_in.session.session_key
    query = log_out(signed_in, forge)
    assert query["id_token_hint"] == id_token
    assert query["post_logout_redirect_uri"] == "http://localhost/sso/logout/complete/"
    assert query["client_id"] == forge.client_id
    assert len(query["state"]) >= 43
    assert set(query) == {"id_token_hint", "post_logout_redirect_uri", "client_id", "state"}
    assert not SSOSession.objects.filter(session_key=session_key).exists()
    [event] = AuditEvent.objects.filter(event_type="auth.logout")
    assert event.details.get("provider_logout") is True


def test_each_logout_gets_a_new_state(
    client: Client, forge: ForgedProvider, configure: Any
) -> None:
    states = set()
    for _ in range(3):
        sign_in(client, forge)
        states.add(log_out(client, forge)["state"])
    assert len(states) == 3


def test_configured_post_logout_redirect_uri(
    signed_in: Client, forge: ForgedProvider, configure: Any
) -> None:
    configure(POST_LOGOUT_REDIRECT_URI="https://rp.example/sso/logout/complete/")
    query = log_out(signed_in, forge)
    assert query["post_logout_redirect_uri"] == "https://rp.example/sso/logout/complete/"


def test_provider_logout_off_lands_directly(
    signed_in: Client, forge: ForgedProvider, configure: Any
) -> None:
    configure(PROVIDER_LOGOUT=False)
    response = signed_in.post("/sso/logout/", {"next": LANDING})
    assert response.status_code == 302
    assert response["Location"] == LANDING
    assert "_auth_user_id" not in signed_in.session


# -- the way back ----------------------------------------------------------------------


def test_right_state_lands_on_the_page_chosen_at_logout(
    signed_in: Client, forge: ForgedProvider
) -> None:
    query = log_out(signed_in, forge)
    response = complete(signed_in, state=query["state"])
    assert response["Location"] == LANDING
    assert "_auth_user_id" not in signed_in.session


@pytest.mark.parametrize(
    "params",
    [{}, {"state": "x" * 43}, {"state": ""}, {"state": "\u00e9" * 43}],
    ids=["no-state", "other-state", "empty-state", "non-ascii-state"],
)
def test_wrong_or_missing_state_lands_on_logout_redirect_url(
    signed_in: Client, forge: ForgedProvider, params: dict[str, str], caplog: Any
) -> None:
    log_out(signed_in, forge)
    with caplog.at_level(logging.WARNING, logger="secure_sso"):
        response = complete(signed_in, **params)
    assert response["Location"] == "/"  # LOGOUT_REDIRECT_URL, not the chosen page
    assert "_auth_user_id" not in signed_in.session
    assert "without the expected state" in caplog.text


def test_state_is_single_use(signed_in: Client, forge: ForgedProvider) -> None:
    query = log_out(signed_in, forge)
    assert complete(signed_in, state=query["state"])["Location"] == LANDING
    assert complete(signed_in, state=query["state"])["Location"] == "/"


def test_wrong_state_burns_the_right_one(signed_in: Client, forge: ForgedProvider) -> None:
    query = log_out(signed_in, forge)
    assert complete(signed_in, state="x" * 43)["Location"] == "/"
    assert complete(signed_in, state=query["state"])["Location"] == "/"


def test_expired_state_lands_on_logout_redirect_url(
    signed_in: Client, forge: ForgedProvider, time_machine: Any
) -> None:
    query = log_out(signed_in, forge)
    time_machine.move_to(time.time() + sso_settings.PENDING_LOGIN_TTL + 1)
    assert complete(signed_in, state=query["state"])["Location"] == "/"


def test_state_from_another_browser_is_not_accepted(
    signed_in: Client, forge: ForgedProvider
) -> None:
    query = log_out(signed_in, forge)
    other = Client(SERVER_NAME="localhost")
    assert complete(other, state=query["state"])["Location"] == "/"


def test_chosen_page_must_be_same_site(signed_in: Client, forge: ForgedProvider) -> None:
    query = log_out(signed_in, forge, next_url="https://evil.example/")
    assert complete(signed_in, state=query["state"])["Location"] == "/"


def test_complete_view_does_not_sign_anyone_in_or_out(signed_in: Client) -> None:
    """A stray visit to the completion URL is a redirect, nothing more."""
    assert complete(signed_in, state="x" * 43)["Location"] == "/"
    assert signed_in.session[SESSION_SUBJECT_KEY] == SUB


# -- the logout view ----------------------------------------------------------------------


def test_get_asks_for_confirmation(signed_in: Client, forge: ForgedProvider) -> None:
    response = signed_in.get("/sso/logout/")
    assert response.status_code == 200
    assert b'method="post"' in response.content
    assert signed_in.session[SESSION_SUBJECT_KEY] == SUB
    assert forge.requests_to("/logout") == []


def test_post_without_csrf_token_refused(forge: ForgedProvider, configure: Any) -> None:
    browser = Client(enforce_csrf_checks=True, SERVER_NAME="localhost")
    sign_in(browser, forge)
    assert browser.post("/sso/logout/").status_code == 403
    assert browser.session[SESSION_SUBJECT_KEY] == SUB

    # With the form's token it works: the refusal was the CSRF check.
    page = browser.get("/sso/logout/")
    token = page.context["csrf_token"]
    response = browser.post("/sso/logout/", {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302
    assert response["Location"].startswith(forge.issuer + "/logout?")
    assert "_auth_user_id" not in browser.session


# -- Auth0 ------------------------------------------------------------------------------


def test_auth0_without_end_session_endpoint_uses_v2_logout(
    signed_in: Client, forge: ForgedProvider, monkeypatch: Any
) -> None:
    forge.metadata = {k: v for k, v in forge.default_metadata().items()
                      if k != "end_session_endpoint"}
    sso_client.reset_provider_cache()
    monkeypatch.setitem(vars(sso_settings), "is_auth0", True)  # the forge is on loopback
    response = signed_in.post("/sso/logout/", {"next": LANDING})
    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}" == forge.issuer
    assert url.path == "/v2/logout"
    assert parse_qs(url.query) == {
        "client_id": [forge.client_id], "returnTo": ["http://localhost" + LANDING],
    }
    assert "_auth_user_id" not in signed_in.session


def test_auth0_fallback_url_carries_no_state(settings: Any) -> None:
    settings.SECURE_SSO = {**settings.SECURE_SSO, "ISSUER": "https://tenant.eu.auth0.com/",
                           "CLIENT_ID": "cid"}
    url = sso_client.end_session_url(
        id_token_hint="h.p.s",
        post_logout_redirect_uri="https://rp.example/sso/logout/complete/",
        state="s" * 43,
        fallback_return_to="https://rp.example/goodbye/",
        metadata=ProviderMetadata(
            issuer="https://tenant.eu.auth0.com/",
            authorization_endpoint="https://tenant.eu.auth0.com/authorize",
            token_endpoint="https://tenant.eu.auth0.com/oauth/token",
            jwks_uri="https://tenant.eu.auth0.com/.well-known/jwks.json",
            userinfo_endpoint=None,
            end_session_endpoint=None,
            iss_parameter_supported=False,
        ),
    )
    assert url is not None
    assert urlsplit(url)[:3] == ("https", "tenant.eu.auth0.com", "/v2/logout")
    assert parse_qs(urlsplit(url).query) == {
        "client_id": ["cid"], "returnTo": ["https://rp.example/goodbye/"],
    }


def test_not_auth0_without_endpoint_stays_local(
    signed_in: Client, forge: ForgedProvider
) -> None:
    forge.metadata = {k: v for k, v in forge.default_metadata().items()
                      if k != "end_session_endpoint"}
    sso_client.reset_provider_cache()
    response = signed_in.post("/sso/logout/", {"next": LANDING})
    assert response["Location"] == LANDING
    assert "_auth_user_id" not in signed_in.session
