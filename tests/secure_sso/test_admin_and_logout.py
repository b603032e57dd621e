"""Admin SSO wiring and the provider sign-out URL, without a browser."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model

from secure_sso import client
from secure_sso.client import ProviderMetadata
from secure_sso.testing import force_login


def metadata(issuer: str, end_session: str | None) -> ProviderMetadata:
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=f"{issuer}authorize",
        token_endpoint=f"{issuer}oauth/token",
        jwks_uri=f"{issuer}.well-known/jwks.json",
        userinfo_endpoint=None,
        end_session_endpoint=end_session,
        iss_parameter_supported=False,
    )


def configure(settings: Any, **values: Any) -> None:
    settings.SECURE_SSO = {**settings.SECURE_SSO, **values}


class TestEndSessionUrl:
    def test_rp_initiated_logout(self, settings: Any) -> None:
        """An advertised end_session_endpoint gets id_token_hint, client_id and the return URL."""
        configure(settings, ISSUER="https://idp.example/", CLIENT_ID="cid")
        url = client.end_session_url(
            id_token_hint="header.payload.sig",
            post_logout_redirect_uri="https://rp.example/",
            metadata=metadata("https://idp.example/", "https://idp.example/logout"),
        )
        query = parse_qs(urlsplit(url).query)
        assert url.startswith("https://idp.example/logout?")
        assert query == {
            "client_id": ["cid"],
            "post_logout_redirect_uri": ["https://rp.example/"],
            "id_token_hint": ["header.payload.sig"],
        }

    def test_auth0_fallback(self, settings: Any) -> None:
        """An Auth0 tenant without end_session_endpoint gets /v2/logout?client_id=&returnTo=."""
        configure(settings, ISSUER="https://tenant.eu.auth0.com/", CLIENT_ID="cid")
        url = client.end_session_url(
            id_token_hint=None,
            post_logout_redirect_uri="https://rp.example/",
            metadata=metadata("https://tenant.eu.auth0.com/", None),
        )
        assert urlsplit(url)[:3] == ("https", "tenant.eu.auth0.com", "/v2/logout")
        assert parse_qs(urlsplit(url).query) == {
            "client_id": ["cid"],
            "returnTo": ["https://rp.example/"],
        }

    @pytest.mark.parametrize("issuer", ["https://idp.example/", "https://auth0.com.evil.test/"])
    def test_no_endpoint_no_provider_logout(self, settings: Any, issuer: str) -> None:
        """Without an end-session endpoint, and not Auth0, sign-out stays local."""
        configure(settings, ISSUER=issuer, CLIENT_ID="cid")
        assert client.end_session_url(
            id_token_hint=None,
            post_logout_redirect_uri="https://rp.example/",
            metadata=metadata(issuer, None),
        ) is None


@pytest.mark.django_db
class TestAdminLogin:
    def test_sso_link_beside_password_form(self, client: Any) -> None:
        """The admin login page offers SSO and keeps the password form by default."""
        page = client.get("/admin/login/?next=/admin/")
        assert page.status_code == 200
        assert b"Sign in with SSO" in page.content
        assert b'href="/sso/login/?next=/admin/"' in page.content
        assert b'name="password"' in page.content

    def test_password_login_switched_off(self, client: Any, settings: Any) -> None:
        """ADMIN_PASSWORD_LOGIN=False hides the form and refuses a password POST."""
        get_user_model().objects.create_superuser("root", "root@example.test", "pw")
        configure(settings, ADMIN_PASSWORD_LOGIN=False)
        page = client.get("/admin/login/")
        assert b"Sign in with SSO" in page.content
        assert b'name="password"' not in page.content
        refused = client.post("/admin/login/", {"username": "root", "password": "pw"})
        assert refused.status_code == 403
        assert "_auth_user_id" not in client.session

    def test_password_login_works_when_on(self, client: Any) -> None:
        """Both ways in work by default: the password form still signs staff in."""
        get_user_model().objects.create_superuser("root", "root@example.test", "pw")
        response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": "pw"})
        assert response.status_code == 302
        assert "_auth_user_id" in client.session


@pytest.mark.django_db
class TestLogoutView:
    def test_get_only_asks(self, client: Any) -> None:
        """GET /sso/logout/ shows a form and signs nobody out (no CSRF-able sign-out)."""
        force_login(client, get_user_model().objects.create_user("u"))
        page = client.get("/sso/logout/")
        assert page.status_code == 200
        assert b'method="post"' in page.content
        assert "_auth_user_id" in client.session

    def test_post_without_csrf_refused(self) -> None:
        """A cross-site POST without the CSRF token does not sign out."""
        from django.test import Client

        browser = Client(enforce_csrf_checks=True, SERVER_NAME="localhost")
        force_login(browser, get_user_model().objects.create_user("v"))
        assert browser.post("/sso/logout/").status_code == 403
        assert "_auth_user_id" in browser.session

    def test_local_user_post_goes_to_landing_page(self, client: Any) -> None:
        """A user who did not sign in through SSO is logged out locally, no provider trip."""
        force_login(client, get_user_model().objects.create_user("w"))
        response = client.post("/sso/logout/")
        assert response.status_code == 302
        assert response.headers["Location"] == "/"
        assert "_auth_user_id" not in client.session
        assert "no-store" in response.headers["Cache-Control"]


class TestLandingPages:
    def test_url_names_are_resolved(self, settings: Any) -> None:
        """LOGIN_REDIRECT_URL / LOGOUT_REDIRECT_URL may be URL names, as in Django."""
        from secure_sso.conf import sso_settings

        settings.LOGIN_REDIRECT_URL = "dashboard"
        configure(settings, LOGOUT_REDIRECT_URL="home")
        assert sso_settings.LOGIN_REDIRECT_URL == "/dashboard/"
        assert sso_settings.LOGOUT_REDIRECT_URL == "/"
