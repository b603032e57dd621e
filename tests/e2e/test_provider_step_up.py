"""Provider step-up against the real oidc-provider (example/devidp), over real HTTP.

A signed-in person opens a page that needs a recent step-up while
``STEP_UP_METHOD = "provider"``: the site sends them back to the provider, which shows
its login form again (``prompt=login``, ``max_age=0``) even though its own session is
alive. The devidp puts ``amr``/``acr`` in the ID token from the accounts file entry of
the login (``{"amr": ["pwd", "mfa"], "acr": "urn:devidp:mfa"}``), so a test chooses per
account whether the provider proves a second factor.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from audit.models import AuditEvent
from tests.conftest import E2E_CLIENT_ID, E2E_CLIENT_SECRET
from tests.idp import login_via_devidp, reauthenticate_via_devidp

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROTECTED = "/test/provider-step-up/"
MFA = {"amr": ["pwd", "mfa"], "acr": "urn:devidp:mfa"}


@pytest.fixture
def provider_step_up(settings: Any, sso_live: Any) -> Any:
    """``sso_live`` with provider step-up; alice proves MFA at the provider, bob does not."""
    settings.SECURE_SSO = {**settings.SECURE_SSO, "STEP_UP_METHOD": "provider"}
    sso_live.set_account("alice", MFA)
    sso_live.set_account("bob", {})
    yield sso_live
    sso_live.remove_account("alice")
    sso_live.remove_account("bob")


def sign_in(live_server: Any, login: str) -> requests.Session:
    session = requests.Session()
    start = session.get(f"{live_server.url}/sso/login/", allow_redirects=False)
    back = login_via_devidp(session, start.headers["Location"], login)
    landed = session.get(back.headers["Location"], allow_redirects=False)
    assert landed.status_code == 302, landed.text[:500]
    assert session.get(f"{live_server.url}/").text == f"home: {login}"
    return session


def to_provider(session: requests.Session, live_server: Any, path: str) -> str:
    """Open ``path`` and follow the site's redirects; the provider URL it sends to."""
    url = f"{live_server.url}{path}"
    for _ in range(5):
        response = session.get(url, allow_redirects=False)
        assert response.status_code == 302, (url, response.status_code, response.text[:500])
        url = urljoin(url, response.headers["Location"])
        if not url.startswith(live_server.url):
            return url
    raise AssertionError(f"no redirect to the provider from {path}")


def step_up(session: requests.Session, live_server: Any, login: str) -> requests.Response:
    """From the protected page to the provider's login form and back to the callback."""
    authorize = to_provider(session, live_server, PROTECTED)
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert (query["prompt"], query["max_age"]) == ("login", "0")
    # The provider's session from the sign-in is alive, yet it asks for a login again
    # (reauthenticate_via_devidp raises otherwise).
    back = reauthenticate_via_devidp(session, authorize, login)
    callback = back.headers["Location"]
    assert callback.startswith(f"{live_server.url}/sso/callback/")
    return session.get(callback, allow_redirects=False)


def test_mfa_at_the_provider_opens_the_page(provider_step_up, live_server):
    """alice signs in, is sent back to the provider, proves MFA there: the page opens."""
    session = sign_in(live_server, "alice")
    assert session.get(f"{live_server.url}{PROTECTED}", allow_redirects=False).status_code == 302
    back = step_up(session, live_server, "alice")
    assert back.status_code == 302, back.text[:500]
    assert back.headers["Location"] == PROTECTED
    page = session.get(f"{live_server.url}{PROTECTED}", allow_redirects=False)
    assert (page.status_code, page.text) == (200, "stepped up: alice")
    success = AuditEvent.objects.get(event_type="mfa.success")
    assert (success.subject, success.details["method"]) == ("alice", "provider")
    assert success.details["amr"] == ["pwd", "mfa"]
    # The step-up belongs to this browser's session only.
    other = sign_in(live_server, "alice")
    assert other.get(f"{live_server.url}{PROTECTED}", allow_redirects=False).status_code == 302


def test_no_second_factor_is_refused(provider_step_up, live_server):
    """bob's provider login carries no amr/acr: a 403 page, still signed in, page locked."""
    session = sign_in(live_server, "bob")
    back = step_up(session, live_server, "bob")
    assert back.status_code == 403
    assert "step_up_not_proven" in back.text
    assert session.get(f"{live_server.url}/").text == "home: bob"
    assert session.get(f"{live_server.url}{PROTECTED}", allow_redirects=False).status_code == 302
    failure = AuditEvent.objects.get(event_type="mfa.failure")
    assert (failure.reason, failure.details["method"]) == ("step_up_not_proven", "provider")
    assert not AuditEvent.objects.filter(event_type="mfa.success").exists()


def test_acr_values_are_asked_and_honoured(provider_step_up, live_server, settings):
    """With STEP_UP_ACR_VALUES (and no amr accepted), the provider's acr decides."""
    settings.SECURE_SSO = {**settings.SECURE_SSO, "STEP_UP_ACR_VALUES": ["urn:devidp:mfa"],
                           "STEP_UP_AMR": []}
    session = sign_in(live_server, "alice")
    authorize = to_provider(session, live_server, PROTECTED)
    assert parse_qs(urlsplit(authorize).query)["acr_values"] == ["urn:devidp:mfa"]
    back = step_up(session, live_server, "alice")
    assert back.status_code == 302 and back.headers["Location"] == PROTECTED
    provider_step_up.set_account("alice", {"amr": ["pwd", "mfa"], "acr": "urn:devidp:pwd"})
    refused = step_up(sign_in(live_server, "alice"), live_server, "alice")
    assert refused.status_code == 403 and "step_up_not_proven" in refused.text


def test_another_account_cannot_step_up(provider_step_up, live_server):
    """bob signs in here; at the provider alice (with MFA) logs in: refused, and more.

    Logging in as alice ends bob's session at the provider, whose back-channel call
    ends bob's session here before the step-up comes back: the callback finds no
    pending step-up (the session is gone) and nobody is signed in.
    """
    from audit.models import AuditEvent

    session = sign_in(live_server, "bob")
    back = step_up(session, live_server, "alice")
    assert back.status_code == 400
    assert "state_mismatch" in back.text
    assert session.get(f"{live_server.url}/").text == "home: anonymous"
    ended = AuditEvent.objects.get(event_type="sso.backchannel_logout", subject="bob")
    assert ended.details["sessions_ended"] == 1 and ended.outcome == "success"


def test_devidp_id_token_carries_the_login_authentication(devidp, live_server):
    """The devidp's ID token has amr/acr from the accounts entry and auth_time; userinfo
    does not repeat them as user claims; an entry without them gives neither."""
    metadata = devidp.metadata()
    assert {"urn:devidp:pwd", "urn:devidp:mfa"} <= set(metadata["acr_values_supported"])
    redirect_uri = f"{live_server.url}/sso/callback/"
    devidp.set_account("mallory", MFA)
    devidp.set_account("trent", {"email": "trent@corp.test"})
    try:
        seen = {}
        for login in ("mallory", "trent"):
            verifier = secrets.token_urlsafe(48)
            challenge = base64.urlsafe_b64encode(
                hashlib.sha256(verifier.encode("ascii")).digest()
            ).rstrip(b"=").decode("ascii")
            query = urlencode({
                "client_id": E2E_CLIENT_ID, "response_type": "code", "scope": "openid email",
                "redirect_uri": redirect_uri, "state": "s" * 43, "nonce": "n" * 43,
                "code_challenge": challenge, "code_challenge_method": "S256",
            })
            session = requests.Session()
            back = login_via_devidp(session, f"{metadata['authorization_endpoint']}?{query}", login)
            code = parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]
            token = requests.post(
                metadata["token_endpoint"],
                data={"grant_type": "authorization_code", "code": code,
                      "redirect_uri": redirect_uri, "code_verifier": verifier},
                auth=(E2E_CLIENT_ID, E2E_CLIENT_SECRET),
                timeout=10,
            ).json()
            keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
            claims = jwt.decode(token["id_token"], keys).claims
            userinfo = requests.get(
                metadata["userinfo_endpoint"],
                headers={"Authorization": f"Bearer {token['access_token']}"},
                timeout=10,
            ).json()
            assert "amr" not in userinfo and "acr" not in userinfo
            seen[login] = claims
    finally:
        devidp.remove_account("mallory")
        devidp.remove_account("trent")
    assert seen["mallory"]["amr"] == ["pwd", "mfa"]
    assert seen["mallory"]["acr"] == "urn:devidp:mfa"
    assert abs(seen["mallory"]["auth_time"] - time.time()) < 60
    assert "amr" not in seen["trent"] and "acr" not in seen["trent"]
    assert isinstance(seen["trent"]["auth_time"], int)
