"""The whole Authorization Code flow against the real oidc-provider, over real HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from secure_sso.models import SSOIdentity
from tests.idp import end_session_via_devidp, login_via_devidp

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def start(session: requests.Session, live_server, next_url: str | None = None) -> str:
    params = {"next": next_url} if next_url else None
    response = session.get(f"{live_server.url}/sso/login/", params=params, allow_redirects=False)
    assert response.status_code == 302
    return response.headers["Location"]


def sign_in(live_server, login: str, next_url: str | None = None):
    session = requests.Session()
    authorize = start(session, live_server, next_url)
    back = login_via_devidp(session, authorize, login)
    assert back.headers["Location"].startswith(f"{live_server.url}/sso/callback/")
    landed = session.get(back.headers["Location"], allow_redirects=False)
    return session, back.headers["Location"], landed


class TestSignIn:
    def test_sign_in_lands_on_dashboard(self, sso_live, live_server):
        """A person who signs in at the provider lands on the dashboard, signed in."""
        session, _, landed = sign_in(live_server, "alice")
        assert landed.status_code == 302
        assert landed.headers["Location"] == "/dashboard/"
        page = session.get(f"{live_server.url}/dashboard/")
        assert page.text.startswith("dashboard: alice")

    def test_session_key_rotated_at_sign_in(self, sso_live, live_server):
        """The session that started the sign-in is not the one that is signed in (fixation)."""
        session = requests.Session()
        back = login_via_devidp(session, start(session, live_server), "olga")
        before = session.cookies.get("sessionid")
        session.get(back.headers["Location"], allow_redirects=False)
        after = session.cookies.get("sessionid")
        assert before and after and before != after
        binding = session.cookies.get("secure_sso_binding")
        for cookie, expected in ((before, "home: anonymous"), (after, "home: olga")):
            page = requests.get(
                f"{live_server.url}/",
                headers={"Cookie": f"sessionid={cookie}; secure_sso_binding={binding}"},
                timeout=10,
            )
            assert page.text == expected

    def test_authorization_request_pins_pkce_state_nonce(self, sso_live, live_server):
        """The provider is asked for code flow with S256 PKCE, state and nonce."""
        query = parse_qs(urlsplit(start(requests.Session(), live_server)).query)
        assert query["response_type"] == ["code"]
        assert query["code_challenge_method"] == ["S256"]
        assert len(query["code_challenge"][0]) == 43
        assert len(query["state"][0]) >= 43 and len(query["nonce"][0]) >= 43
        assert "openid" in query["scope"][0].split()

    def test_identity_keyed_on_issuer_and_sub(self, sso_live, live_server):
        """The user is linked by (issuer, sub), has no usable password and verified email."""
        sign_in(live_server, "bob.smith")
        identity = SSOIdentity.objects.get(issuer=sso_live.issuer, subject="bob.smith")
        user = identity.user
        assert not user.has_usable_password()
        assert user.email == "bob.smith@example.test"
        assert (user.first_name, user.last_name) == ("Bob", "Smith")
        assert "nonce" not in identity.claims and "email" in identity.claims

    def test_groups_follow_the_provider(self, sso_live, live_server):
        """Mapped groups and staff are granted, then removed when lost at the provider."""
        sso_live.set_account("carol", {"groups": ["admins", "staff", "unmapped"]})
        sign_in(live_server, "carol")
        user = SSOIdentity.objects.get(subject="carol").user
        assert set(user.groups.values_list("name", flat=True)) == {"Administrators", "Staff"}
        assert user.is_staff and not user.is_superuser
        sso_live.set_account("carol", {"groups": ["staff"]})
        sign_in(live_server, "carol")
        user.refresh_from_db()
        assert set(user.groups.values_list("name", flat=True)) == {"Staff"}
        assert not user.is_staff

    def test_unverified_email_is_not_copied(self, sso_live, live_server):
        """email_verified=false leaves the Django email empty."""
        sso_live.set_account("dave", {"email": "ceo@victim.test", "email_verified": False})
        sign_in(live_server, "dave")
        assert SSOIdentity.objects.get(subject="dave").user.email == ""

    def test_safe_next_is_kept(self, sso_live, live_server):
        """A same-site next= survives the round trip."""
        _, _, landed = sign_in(live_server, "erin", next_url="/dashboard/?tab=2")
        assert landed.headers["Location"] == "/dashboard/?tab=2"

    def test_foreign_next_falls_back(self, sso_live, live_server):
        """A foreign next= is replaced by the default landing page."""
        _, _, landed = sign_in(live_server, "erin", next_url="https://evil.test/")
        assert landed.headers["Location"] == "/dashboard/"


class TestTamperedCallback:
    def test_replayed_callback_is_refused(self, sso_live, live_server):
        """The same callback URL a second time gets a 400 page and no new session."""
        session, callback, landed = sign_in(live_server, "frank")
        assert landed.status_code == 302
        fresh = requests.Session()
        replay = fresh.get(callback, allow_redirects=False)
        assert replay.status_code == 400
        assert "Sign in again" in replay.text
        assert fresh.get(f"{live_server.url}/").text == "home: anonymous"

    def test_changed_state_is_refused(self, sso_live, live_server):
        """A callback whose state was altered is refused before the code is used."""
        session = requests.Session()
        back = login_via_devidp(session, start(session, live_server), "grace")
        url = back.headers["Location"].replace("state=", "state=x")
        response = session.get(url, allow_redirects=False)
        assert response.status_code == 400
        assert session.get(f"{live_server.url}/").text == "home: anonymous"

    def test_replayed_code_with_new_state_is_refused(self, sso_live, live_server):
        """A used code smuggled into a fresh sign-in fails at the token endpoint."""
        session, callback, _ = sign_in(live_server, "heidi")
        code = parse_qs(urlsplit(callback).query)["code"][0]
        attacker = requests.Session()
        authorize = start(attacker, live_server)
        state = parse_qs(urlsplit(authorize).query)["state"][0]
        response = attacker.get(
            f"{live_server.url}/sso/callback/",
            params={"code": code, "state": state, "iss": sso_live.issuer},
            allow_redirects=False,
        )
        assert response.status_code == 400
        assert code not in response.text
        assert attacker.get(f"{live_server.url}/").text == "home: anonymous"

    def test_access_denied_is_a_clear_403(self, sso_live, live_server):
        """error=access_denied from the provider ends on a 403 page with a way to retry."""
        session = requests.Session()
        state = parse_qs(urlsplit(start(session, live_server)).query)["state"][0]
        response = session.get(
            f"{live_server.url}/sso/callback/",
            params={"error": "access_denied", "state": state, "iss": sso_live.issuer},
        )
        assert response.status_code == 403
        assert "/sso/login/" in response.text


class TestSignOut:
    def test_sign_out_ends_both_sessions(self, sso_live, live_server):
        """Sign-out logs out locally, then at the provider, and returns home signed out."""
        session, _, _ = sign_in(live_server, "ivan")
        page = session.get(f"{live_server.url}/sso/logout/")
        csrf = session.cookies["csrftoken"]
        out = session.post(
            f"{live_server.url}/sso/logout/",
            data={"csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{live_server.url}/sso/logout/"},
            allow_redirects=False,
        )
        assert page.status_code == 200
        assert out.status_code == 302
        end_session = out.headers["Location"]
        assert end_session.startswith(sso_live.issuer)
        query = parse_qs(urlsplit(end_session).query)
        assert query["client_id"] == ["secure-sso-tests"]
        assert query["post_logout_redirect_uri"] == [f"{live_server.url}/sso/logout/complete/"]
        assert "id_token_hint" in query
        assert len(query["state"][0]) >= 43
        back = end_session_via_devidp(session, end_session)
        # The provider returns the state; the landing page is the one chosen at logout.
        assert back.headers["Location"].startswith(f"{live_server.url}/sso/logout/complete/")
        assert parse_qs(urlsplit(back.headers["Location"]).query)["state"] == query["state"]
        landed = session.get(back.headers["Location"], allow_redirects=False)
        assert landed.status_code == 302 and landed.headers["Location"] == "/"
        assert session.get(f"{live_server.url}/").text == "home: anonymous"
        # The provider's session is gone too: the next sign-in asks for a login again.
        again = session.get(start(session, live_server), allow_redirects=False)
        assert again.status_code in (302, 303)
        assert again.headers["Location"].startswith("/interaction/")
