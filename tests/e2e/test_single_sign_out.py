"""Single sign-out and the session's tokens against the real oidc-provider.

The provider calls the live server's back-channel logout endpoint itself (its SSRF
guard is relaxed for loopback in the test provider only, see tests/conftest.py), and
answers refresh-token grants with rotation, as Auth0 or Okta do with rotation on.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from audit.models import AuditEvent
from secure_sso import tokens
from secure_sso.models import SSOSession
from tests.conftest import E2E_CLIENT_ID, E2E_CLIENT_SECRET
from tests.e2e.test_signin_flow import sign_in, start
from tests.idp import end_session_via_devidp, login_via_devidp

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def who(session: requests.Session, live_server: Any) -> str:
    return session.get(f"{live_server.url}/", timeout=10).text


def sign_out_at_provider(session: requests.Session, devidp: Any) -> requests.Response:
    """The person signs out on the provider's own page (not through this site)."""
    end_session = f"{devidp.issuer}/session/end?" + urlencode({"client_id": E2E_CLIENT_ID})
    return end_session_via_devidp(session, end_session)


def provider_cookies(session: requests.Session, devidp: Any) -> requests.cookies.RequestsCookieJar:
    """The provider's cookies of a browser (its sign-in session at the provider)."""
    host = devidp.issuer.split("//", 1)[1].split(":", 1)[0]
    jar = requests.cookies.RequestsCookieJar()
    for cookie in session.cookies:
        if cookie.domain.lstrip(".") in (host, f"{host}.local"):
            jar.set_cookie(cookie)
    return jar


def test_signing_out_at_the_provider_ends_this_sites_session(sso_live, live_server):
    """Two browsers, two provider sessions: the one signed out at the provider ends here,
    within the provider's back-channel call; the other stays."""
    first, _, _ = sign_in(live_server, "dora")
    second, _, _ = sign_in(live_server, "dora")
    assert who(first, live_server) == who(second, live_server) == "home: dora"
    assert SSOSession.objects.filter(subject="dora").exclude(sid="").count() == 2

    sign_out_at_provider(first, sso_live)
    # No waiting: the provider answers only after its back-channel calls returned.
    assert who(first, live_server) == "home: anonymous"
    assert who(second, live_server) == "home: dora"
    [event] = AuditEvent.objects.filter(event_type="sso.backchannel_logout", subject="dora")
    assert (event.outcome, event.details["sessions_ended"], event.details["sid_given"]) == (
        "success", 1, True
    )


def test_one_provider_session_in_two_browsers_ends_in_both(sso_live, live_server):
    """A second browser that signed in on the same provider session (no password asked)
    is tied to the same sid: one sign-out at the provider ends both sessions here."""
    first, _, _ = sign_in(live_server, "erin")
    second = requests.Session()
    second.cookies.update(provider_cookies(first, sso_live))
    back = login_via_devidp(second, start(second, live_server), "erin")
    second.get(back.headers["Location"], allow_redirects=False)
    assert who(second, live_server) == "home: erin"
    sids = set(SSOSession.objects.filter(subject="erin").values_list("sid", flat=True))
    assert len(sids) == 1 and "" not in sids

    sign_out_at_provider(second, sso_live)
    assert who(first, live_server) == "home: anonymous"
    assert who(second, live_server) == "home: anonymous"
    [event] = AuditEvent.objects.filter(event_type="sso.backchannel_logout", subject="erin")
    assert event.details["sessions_ended"] == 2


def test_forged_logout_token_is_refused_by_the_live_site(sso_live, live_server):
    """A token the provider did not sign is refused with 400 and no-store."""
    browser, _, _ = sign_in(live_server, "fay")
    response = requests.post(
        f"{live_server.url}/sso/backchannel-logout/",
        data={"logout_token": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJmYXkifQ."},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json()["error"] == "invalid_request"
    assert who(browser, live_server) == "home: fay"


@pytest.fixture
def refreshing(settings: Any, sso_live: Any) -> Any:
    """Refresh tokens on; every access-token request is due for a refresh."""
    settings.SECURE_SSO = {
        **settings.SECURE_SSO,
        "REFRESH_TOKENS": True,
        # oidc-provider follows OpenID Connect Core 11: offline_access needs consent.
        "EXTRA_AUTHORIZE_PARAMS": {"prompt": "consent"},
        "REFRESH_BEFORE_EXPIRY": 7200,
    }
    return sso_live


def stored(subject: str, issuer: str) -> dict[str, Any]:
    row = SSOSession.objects.get(subject=subject)
    return tokens.unseal(row.tokens, issuer=issuer, subject=subject)


def test_refresh_rotates_then_revocation_ends_the_session(refreshing, live_server):
    """Refreshes rotate the refresh token at the real provider; once the grant is revoked
    there, the next refresh is refused and the session ends, audited."""
    browser, _, _ = sign_in(live_server, "gus")
    first = stored("gus", refreshing.issuer)
    assert first["refresh_token"] and first["access_token"]

    digest = browser.get(f"{live_server.url}/test/access-token/", timeout=10).text
    second = stored("gus", refreshing.issuer)
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert digest == hashlib.sha256(second["access_token"].encode()).hexdigest()
    # The new access token works at the provider.
    userinfo = requests.get(
        refreshing.metadata()["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {second['access_token']}"},
        timeout=10,
    )
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == "gus"

    browser.get(f"{live_server.url}/test/access-token/", timeout=10)
    third = stored("gus", refreshing.issuer)
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])

    revoked = requests.post(
        refreshing.metadata()["revocation_endpoint"],
        data={"token": third["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(E2E_CLIENT_ID, E2E_CLIENT_SECRET),
        timeout=10,
    )
    assert revoked.status_code == 200
    after = browser.get(f"{live_server.url}/test/access-token/", allow_redirects=False,
                        timeout=10)
    assert after.status_code == 302 and "/sso/login/" in after.headers["Location"]
    assert who(browser, live_server) == "home: anonymous"
    [ended] = AuditEvent.objects.filter(event_type="session.refresh_refused")
    assert ended.reason == "refresh_refused"
    assert not SSOSession.objects.filter(subject="gus").exists()
