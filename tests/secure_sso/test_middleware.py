"""The hardening middleware under both request handlers: every behaviour runs on WSGI and ASGI.

``Browser`` drives a ``Client`` (WSGI) or an ``AsyncClient`` (ASGI, through
``async_to_sync``) with the same calls, so each test is parametrized over the handler.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from asgiref.sync import async_to_sync
from django.contrib.sessions.backends.db import SessionStore
from django.test import AsyncClient, Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from secure_sso import sessions
from secure_sso.testing import force_login
from tests.strategies_http import cookie_specs

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
CHROME_UPDATED = CHROME.replace("Chrome/124.0.0.0", "Chrome/125.0.6422.60")
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
BINDING = "secure_sso_binding"
HOST_BINDING = f"__Host-{BINDING}"
HANDLERS = ["wsgi", "asgi"]
PASSWORD = "correct horse battery staple"


class _AsyncClient(AsyncClient):
    """``AsyncClient`` always sends ``Host: testserver``; this one sends ``host``."""

    def __init__(self, host: str, **defaults: Any) -> None:
        super().__init__(**defaults)
        self.host = host

    def _base_scope(self, **request: Any) -> dict[str, Any]:
        scope = super()._base_scope(**request)
        scope["headers"] = [
            (name, self.host.encode() if name == b"host" else value)
            for name, value in scope["headers"]
        ]
        return scope


class Browser:
    """One browser (cookie jar, host, User-Agent, scheme) talking to WSGI or ASGI."""

    def __init__(
        self, handler: str, host: str = "localhost", *, secure: bool = False,
        user_agent: str = "",
    ) -> None:
        self.handler = handler
        self.client = Client(SERVER_NAME=host) if handler == "wsgi" else _AsyncClient(host)
        self.secure = secure
        self.user_agent = user_agent

    @property
    def cookies(self) -> Any:
        return self.client.cookies

    @property
    def binding_cookie(self) -> str:
        return HOST_BINDING if self.secure else BINDING

    def request(
        self, method: str, path: str, data: Any = None, *, headers: dict[str, str] | None = None,
        secure: bool | None = None,
    ) -> Any:
        sent = {"User-Agent": self.user_agent} if self.user_agent else {}
        sent.update(headers or {})
        call = getattr(self.client, method)
        if self.handler == "asgi":
            call = async_to_sync(call)
        return call(
            path, data, secure=self.secure if secure is None else secure, headers=sent
        )

    def get(self, path: str, data: Any = None, **kwargs: Any) -> Any:
        return self.request("get", path, data, **kwargs)

    def head(self, path: str, **kwargs: Any) -> Any:
        return self.request("head", path, **kwargs)

    def post(self, path: str, data: Any = None, **kwargs: Any) -> Any:
        return self.request("post", path, data, **kwargs)

    def login(self, user: Any) -> None:
        force_login(self.client, user, user_agent=self.user_agent)

    def session_key(self) -> str | None:
        morsel = self.cookies.get("sessionid")
        return morsel.value if morsel is not None and morsel.value else None

    def stored_session(self) -> dict[str, Any]:
        return dict(SessionStore(self.session_key()).load())

    def edit_session(self, **values: Any) -> None:
        session = self.client.session
        session.update(values)
        session.save()

    def copy(self, *names: str, user_agent: str | None = None) -> Browser:
        """Another browser on the same origin holding only the named cookies of this one."""
        other = Browser(
            self.handler, self.host, secure=self.secure,
            user_agent=self.user_agent if user_agent is None else user_agent,
        )
        for name in names:
            other.cookies[name] = self.cookies[name].value
        return other

    @property
    def host(self) -> str:
        if self.handler == "wsgi":
            return self.client.defaults["SERVER_NAME"]
        return self.client.host


def configure(settings: Any, **values: Any) -> None:
    settings.SECURE_SSO = {**settings.SECURE_SSO, **values}


def audit(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


def login_redirect(next_url: str) -> str:
    return f"/sso/login/?{urlencode({'next': next_url})}"


def set_cookie_lines(response: Any) -> list[str]:
    """The Set-Cookie header values exactly as they leave the server."""
    return [morsel.OutputString() for morsel in response.cookies.values()]


def policy(response: Any) -> dict[str, list[str]]:
    directives = (d.split() for d in response["Content-Security-Policy"].split(";"))
    return {d[0]: d[1:] for d in directives if d}


@pytest.fixture(params=HANDLERS)
def handler(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def loopback(handler: str) -> Browser:
    """A developer's browser on http://localhost (allowed by DEVELOPMENT_MODE)."""
    return Browser(handler)


@pytest.fixture
def remote(handler: str) -> Browser:
    """A browser using plain http to a real (non-loopback) host."""
    return Browser(handler, "testserver")


@pytest.fixture
def https(handler: str) -> Browser:
    """A browser on https://testserver."""
    return Browser(handler, "testserver", secure=True, user_agent=CHROME)


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def signed_in(https: Browser, alice: Any) -> Browser:
    """Alice, signed in on https with a bound session (``secure_sso.testing.force_login``)."""
    https.login(alice)
    return https


# --- TransportMiddleware: https -----------------------------------------------------


class TestHttpsOnly:
    def test_get_redirected_to_https(self, remote: Browser) -> None:
        """A plain-http GET to a real host is redirected (301) to https, same path and query."""
        response = remote.get("/dashboard/?tab=2&q=a%20b")
        assert response.status_code == 301
        assert response["Location"] == "https://testserver/dashboard/?tab=2&q=a%20b"

    def test_head_redirected_to_https(self, remote: Browser) -> None:
        """A plain-http HEAD is redirected like a GET."""
        response = remote.head("/")
        assert response.status_code == 301
        assert response["Location"] == "https://testserver/"

    def test_post_refused(self, remote: Browser) -> None:
        """A plain-http POST gets the 403 page; the view never runs."""
        response = remote.post("/test/cookies/?c=" + json.dumps([["ran", "1", None]]))
        assert response.status_code == 403
        assert b"Secure connection required" in response.content
        assert "ran" not in response.cookies
        assert "Location" not in response

    def test_loopback_http_in_development_mode(self, settings: Any, handler: str) -> None:
        """DEVELOPMENT_MODE lets loopback hosts (localhost, 127.x) use plain http."""
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.2"]
        for host in ("localhost", "127.0.0.1", "127.0.0.2"):
            response = Browser(handler, host).get("/")
            assert response.status_code == 200, host
            assert response.content == b"home: anonymous"

    def test_loopback_http_redirected_without_development_mode(
        self, settings: Any, loopback: Browser
    ) -> None:
        """Without DEVELOPMENT_MODE, loopback hosts get the https redirect too."""
        configure(settings, DEVELOPMENT_MODE=False)
        response = loopback.get("/dashboard/?x=1")
        assert response.status_code == 301
        assert response["Location"] == "https://localhost/dashboard/?x=1"

    def test_https_redirect_setting_disables(self, settings: Any, remote: Browser) -> None:
        """HTTPS_REDIRECT=False serves plain http as is."""
        configure(settings, HTTPS_REDIRECT=False)
        assert remote.get("/").status_code == 200
        assert remote.post("/").status_code == 200

    def test_https_served(self, https: Browser) -> None:
        """An https request is served."""
        response = https.get("/")
        assert response.status_code == 200
        assert response.content == b"home: anonymous"

    def test_forwarded_proto_ignored_without_proxy_setting(self, remote: Browser) -> None:
        """X-Forwarded-Proto: https from the client is not trusted by default."""
        response = remote.get("/", headers={"X-Forwarded-Proto": "https"})
        assert response.status_code == 301

    def test_forwarded_proto_trusted_with_proxy_setting(
        self, settings: Any, remote: Browser
    ) -> None:
        """With SECURE_PROXY_SSL_HEADER set, the proxy's X-Forwarded-Proto: https counts."""
        settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        response = remote.get("/", headers={"X-Forwarded-Proto": "https"})
        assert response.status_code == 200
        assert "Strict-Transport-Security" in response
        assert remote.get("/", headers={"X-Forwarded-Proto": "http"}).status_code == 301


class TestHsts:
    def test_default_header_on_https(self, https: Browser) -> None:
        """https responses carry one year of HSTS with includeSubDomains, without preload."""
        response = https.get("/")
        assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"

    def test_configured(self, settings: Any, https: Browser) -> None:
        """HSTS_SECONDS, HSTS_INCLUDE_SUBDOMAINS and HSTS_PRELOAD shape the header."""
        configure(settings, HSTS_SECONDS=600, HSTS_INCLUDE_SUBDOMAINS=False, HSTS_PRELOAD=True)
        assert https.get("/")["Strict-Transport-Security"] == "max-age=600; preload"

    def test_zero_seconds_disables(self, settings: Any, https: Browser) -> None:
        """HSTS_SECONDS=0 sends no HSTS header."""
        configure(settings, HSTS_SECONDS=0)
        assert "Strict-Transport-Security" not in https.get("/")

    def test_never_on_http(self, settings: Any, loopback: Browser, remote: Browser) -> None:
        """Plain-http responses (loopback, redirects, HTTPS_REDIRECT off) carry no HSTS."""
        assert "Strict-Transport-Security" not in loopback.get("/")
        assert "Strict-Transport-Security" not in remote.get("/")
        configure(settings, HTTPS_REDIRECT=False)
        assert "Strict-Transport-Security" not in remote.get("/")

    def test_view_header_wins(self, https: Browser) -> None:
        """A view's own Strict-Transport-Security is kept."""
        response = https.get("/test/headers/", {"Strict-Transport-Security": "max-age=5"})
        assert response["Strict-Transport-Security"] == "max-age=5"


# --- TransportMiddleware: security headers ------------------------------------------


DEFAULT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


class TestSecurityHeaders:
    @pytest.mark.parametrize("path", ["/", "/test/headers/", "/dashboard/", "/nowhere/"])
    def test_on_every_response(self, https: Browser, path: str) -> None:
        """Pages, redirects and 404s all carry the security headers."""
        response = https.get(path)
        for name, value in DEFAULT_HEADERS.items():
            assert response[name] == value, name

    def test_on_refusals(self, remote: Browser) -> None:
        """The https redirect and the 403 for plain-http POST carry them too."""
        for response in (remote.get("/"), remote.post("/")):
            for name, value in DEFAULT_HEADERS.items():
                assert response[name] == value, name

    def test_without_djangos_middleware(self, settings: Any, https: Browser) -> None:
        """The package sets all five itself, with Django's security middlewares removed."""
        settings.MIDDLEWARE = [
            m for m in settings.MIDDLEWARE
            if m not in {"django.middleware.security.SecurityMiddleware",
                         "django.middleware.clickjacking.XFrameOptionsMiddleware"}
        ]
        response = https.get("/")
        for name, value in DEFAULT_HEADERS.items():
            assert response[name] == value, name

    def test_configurable(self, settings: Any, https: Browser) -> None:
        """REFERRER_POLICY, CROSS_ORIGIN_OPENER_POLICY and PERMISSIONS_POLICY set the values."""
        # Django's SecurityMiddleware would otherwise set its own defaults first.
        settings.SECURE_REFERRER_POLICY = None
        settings.SECURE_CROSS_ORIGIN_OPENER_POLICY = None
        configure(
            settings, REFERRER_POLICY="no-referrer",
            CROSS_ORIGIN_OPENER_POLICY="same-origin-allow-popups",
            PERMISSIONS_POLICY="camera=(self)",
        )
        response = https.get("/")
        assert response["Referrer-Policy"] == "no-referrer"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin-allow-popups"
        assert response["Permissions-Policy"] == "camera=(self)"

    def test_empty_value_omits(self, settings: Any, https: Browser) -> None:
        """An empty PERMISSIONS_POLICY sends no header."""
        configure(settings, PERMISSIONS_POLICY="")
        assert "Permissions-Policy" not in https.get("/")

    def test_view_values_win(self, https: Browser) -> None:
        """Headers the view set are kept as the view set them."""
        own = {
            "X-Frame-Options": "SAMEORIGIN",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Opener-Policy": "unsafe-none",
            "Permissions-Policy": "geolocation=(self)",
        }
        response = https.get("/test/headers/", own)
        for name, value in own.items():
            assert response[name] == value, name


# --- TransportMiddleware: cookies ---------------------------------------------------


def cookies_url(*specs: list[Any], **flags: str) -> str:
    return "/test/cookies/?" + urlencode({"c": json.dumps(list(specs)), **flags})


@pytest.mark.django_db
class TestCookieFlags:
    def test_view_cookie_hardened_on_https(self, https: Browser) -> None:
        """A view's plain cookie leaves with Secure, HttpOnly and SameSite=Lax over https."""
        morsel = https.get(cookies_url(["pref", "dark", None])).cookies["pref"]
        assert morsel["secure"] is True
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Lax"

    def test_session_and_csrf_cookies_hardened(self, https: Browser) -> None:
        """Django's own session and CSRF cookies get the same flags."""
        response = https.get(cookies_url(session="1", csrf="1"))
        for name in ("sessionid", "csrftoken"):
            morsel = response.cookies[name]
            assert morsel["secure"] is True, name
            assert morsel["httponly"] is True, name
            assert morsel["samesite"] == "Lax", name

    def test_explicit_samesite_kept(self, https: Browser) -> None:
        """SameSite chosen by the view (Strict, or None for cross-site use) is kept."""
        response = https.get(cookies_url(["a", "1", "Strict"], ["b", "2", "None"]))
        assert response.cookies["a"]["samesite"] == "Strict"
        assert response.cookies["b"]["samesite"] == "None"
        assert response.cookies["b"]["secure"] is True

    def test_default_samesite_configurable(self, settings: Any, https: Browser) -> None:
        """COOKIE_SAMESITE sets the SameSite of cookies that have none."""
        configure(settings, COOKIE_SAMESITE="Strict")
        assert https.get(cookies_url(["a", "1", None])).cookies["a"]["samesite"] == "Strict"

    def test_js_readable_cookies(self, settings: Any, https: Browser) -> None:
        """Names in JS_READABLE_COOKIES are not made HttpOnly but are still Secure and SameSite."""
        configure(settings, JS_READABLE_COOKIES=["csrftoken", "theme"])
        response = https.get(cookies_url(["theme", "dark", None], ["other", "1", None], csrf="1"))
        for name in ("csrftoken", "theme"):
            assert not response.cookies[name]["httponly"], name
            assert response.cookies[name]["secure"] is True, name
            assert response.cookies[name]["samesite"] == "Lax", name
        assert response.cookies["other"]["httponly"] is True

    def test_not_secure_on_loopback_http(self, loopback: Browser) -> None:
        """On development-mode loopback http cookies are not Secure (browsers would drop them)."""
        morsel = loopback.get(cookies_url(["pref", "dark", None])).cookies["pref"]
        assert not morsel["secure"]
        assert morsel["httponly"] is True and morsel["samesite"] == "Lax"

    def test_secure_on_plain_http_when_redirect_off(self, settings: Any, remote: Browser) -> None:
        """With HTTPS_REDIRECT off, plain http to a real host still gets Secure cookies."""
        configure(settings, HTTPS_REDIRECT=False)
        assert remote.get(cookies_url(["pref", "dark", None])).cookies["pref"]["secure"] is True

    @pytest.mark.parametrize("handler_name", HANDLERS)
    @hypothesis_settings(max_examples=40)
    @given(specs=cookie_specs)
    def test_any_cookie_hardened(self, handler_name: str, specs: list[list[Any]]) -> None:
        """Whatever cookies a view sets over https, each has Secure, HttpOnly and SameSite."""
        browser = Browser(handler_name, "testserver", secure=True)
        response = browser.get(cookies_url(*specs))
        assert response.status_code == 200
        assert set(response.cookies) == {name for name, _, _ in specs}
        for name, _, samesite in specs:
            line = response.cookies[name].OutputString()
            assert "; Secure" in line, line
            assert "; HttpOnly" in line, line
            assert f"; SameSite={samesite or 'Lax'}" in line, line


# --- CSPMiddleware ------------------------------------------------------------------


class TestContentSecurityPolicy:
    def test_package_policy(self, settings: Any, https: Browser) -> None:
        """Without CONTENT_SECURITY_POLICY the strict package policy is sent."""
        configure(settings, ISSUER="https://idp.example.test/realms/main")
        directives = policy(https.get("/"))
        assert directives["default-src"] == ["'self'"]
        assert directives["frame-ancestors"] == ["'none'"]
        assert directives["object-src"] == ["'none'"]
        assert directives["base-uri"] == ["'none'"]
        assert directives["form-action"] == ["'self'", "https://idp.example.test"]

    def test_nonce_matches_page(self, https: Browser) -> None:
        """The nonce in script-src and style-src is the one the page's <style> carries."""
        response = https.get("/sso/logout/")
        assert response.status_code == 200
        nonce = re.search(r'<style nonce="([^"]+)"', response.content.decode()).group(1)
        directives = policy(response)
        assert f"'nonce-{nonce}'" in directives["script-src"]
        assert f"'nonce-{nonce}'" in directives["style-src"]
        assert len(nonce) >= 16

    def test_nonce_fresh_per_response(self, https: Browser) -> None:
        """Each response gets a new nonce."""
        first, second = (policy(https.get("/sso/logout/"))["style-src"] for _ in range(2))
        assert first != second

    def test_extended_by_setting(self, settings: Any, https: Browser) -> None:
        """SECURE_SSO["CSP"] adds sources and None removes a directive."""
        configure(
            settings,
            CSP={"img-src": ["https://cdn.example.test"], "connect-src": "https://api.example.test",
                 "base-uri": None},
        )
        directives = policy(https.get("/"))
        assert directives["img-src"] == ["'self'", "data:", "https://cdn.example.test"]
        assert directives["connect-src"] == ["'self'", "https://api.example.test"]
        assert "base-uri" not in directives
        assert directives["object-src"] == ["'none'"]

    def test_view_policy_kept(self, https: Browser) -> None:
        """A view's own policy (django-csp's @csp) is sent instead of the package policy."""
        response = https.get("/test/csp/own/")
        assert response["Content-Security-Policy"] == "default-src 'self' https://view.example.test"

    def test_view_update_extends_package_policy(self, https: Browser) -> None:
        """django-csp's @csp_update adds to the package policy."""
        directives = policy(https.get("/test/csp/extra/"))
        assert directives["img-src"] == ["'self'", "data:", "https://images.example.test"]
        assert directives["frame-ancestors"] == ["'none'"]

    def test_project_policy_replaces(self, settings: Any, https: Browser) -> None:
        """A project CONTENT_SECURITY_POLICY is sent instead of the package policy."""
        settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'self'", "https:"]}}
        assert https.get("/")["Content-Security-Policy"] == "default-src 'self' https:"


# --- SessionGuardMiddleware: binding ------------------------------------------------


@pytest.mark.django_db
class TestSessionBinding:
    def test_bound_session_works(self, signed_in: Browser) -> None:
        """A session from secure_sso.testing.force_login is accepted, request after request."""
        for _ in range(3):
            response = signed_in.get("/dashboard/")
            assert response.status_code == 200
            assert response.content == b"dashboard: alice"

    def test_loopback_http_uses_plain_cookie_name(self, loopback: Browser, alice: Any) -> None:
        """On loopback http the binding cookie has no __Host- prefix and still works."""
        loopback.login(alice)
        del loopback.cookies[HOST_BINDING]
        assert loopback.get("/dashboard/").content == b"dashboard: alice"

    def test_session_cookie_alone_refused(self, signed_in: Browser) -> None:
        """A session cookie replayed without the binding is flushed, audited and sent to sign in."""
        thief = signed_in.copy("sessionid")
        with capture_logs() as logs:
            response = thief.get("/dashboard/?tab=2")
        assert response.status_code == 302
        assert response["Location"] == login_redirect("/dashboard/?tab=2")
        assert "no-cache" in response["Cache-Control"]
        [event] = audit(logs, "session.binding_mismatch")
        assert event["reason"] == "binding_mismatch"
        assert event["user"] == "alice"
        assert event["outcome"] == "failure"
        # The session is gone for everyone, the real browser included.
        assert not SessionStore().exists(signed_in.session_key())
        assert signed_in.get("/").content == b"home: anonymous"
        assert thief.get("/").content == b"home: anonymous"

    def test_post_without_binding_refused(self, signed_in: Browser) -> None:
        """A non-GET request without the binding gets the 403 session-ended page, not the view."""
        thief = signed_in.copy("sessionid")
        response = thief.post(cookies_url(["ran", "1", None]))
        assert response.status_code == 403
        assert b"Your session has ended" in response.content
        assert "ran" not in response.cookies
        assert signed_in.get("/").content == b"home: anonymous"

    def test_wrong_binding_refused(self, signed_in: Browser) -> None:
        """A binding cookie with another value is refused."""
        thief = signed_in.copy("sessionid")
        thief.cookies[HOST_BINDING] = "x" * 43
        with capture_logs() as logs:
            assert thief.get("/dashboard/").status_code == 302
        assert audit(logs, "session.binding_mismatch")
        assert signed_in.get("/").content == b"home: anonymous"

    def test_binding_from_other_session_refused(self, signed_in: Browser, django_user_model):
        """The binding cookie of another session (even a valid one) does not fit this session."""
        mallory = Browser(signed_in.handler, "testserver", secure=True, user_agent=CHROME)
        mallory.login(django_user_model.objects.create_user("mallory"))
        mallory.cookies["sessionid"] = signed_in.cookies["sessionid"].value
        assert mallory.get("/dashboard/").status_code == 302
        assert signed_in.get("/").content == b"home: anonymous"

    def test_http_binding_cookie_name_not_accepted_on_https(self, signed_in: Browser) -> None:
        """On https only the __Host- cookie counts (a sibling subdomain cannot plant it)."""
        thief = signed_in.copy("sessionid")
        thief.cookies[BINDING] = signed_in.cookies[HOST_BINDING].value
        assert thief.get("/dashboard/").status_code == 302

    def test_other_browser_family_refused(self, signed_in: Browser) -> None:
        """Both cookies replayed from Firefox, when the session was bound in Chrome, are refused."""
        thief = signed_in.copy("sessionid", HOST_BINDING, user_agent=FIREFOX)
        with capture_logs() as logs:
            assert thief.get("/dashboard/").status_code == 302
        [event] = audit(logs, "session.binding_mismatch")
        assert event["reason"] == "binding_mismatch"
        assert signed_in.get("/").content == b"home: anonymous"

    def test_other_browser_family_allowed_without_fingerprint(
        self, settings: Any, https: Browser, alice: Any
    ) -> None:
        """With BINDING_FINGERPRINT off, the cookies alone bind the session."""
        configure(settings, BINDING_FINGERPRINT=False)
        https.login(alice)
        other = https.copy("sessionid", HOST_BINDING, user_agent=FIREFOX)
        assert other.get("/dashboard/").content == b"dashboard: alice"

    def test_browser_update_allowed(self, signed_in: Browser) -> None:
        """A version bump of the same browser keeps the session."""
        signed_in.user_agent = CHROME_UPDATED
        assert signed_in.get("/dashboard/").content == b"dashboard: alice"

    def test_binding_disabled(self, settings: Any, signed_in: Browser) -> None:
        """SESSION_BINDING=False accepts the session cookie alone."""
        configure(settings, SESSION_BINDING=False)
        thief = signed_in.copy("sessionid", user_agent=FIREFOX)
        assert thief.get("/dashboard/").content == b"dashboard: alice"

    def test_unbound_session_refused(self, https: Browser, alice: Any) -> None:
        """An authenticated session that never went through sessions.start is ended."""
        https.login(alice)
        session = https.client.session
        for key in (sessions.SESSION_CREATED_KEY, sessions.SESSION_LAST_SEEN_KEY,
                    sessions.SESSION_BINDING_KEY, sessions.SESSION_PRIVILEGE_KEY):
            del session[key]
        session.save()
        with capture_logs() as logs:
            response = https.get("/dashboard/")
        assert response["Location"] == login_redirect("/dashboard/")
        [event] = audit(logs, "session.binding_mismatch")
        assert event["reason"] == "unbound_session"
        assert https.get("/").content == b"home: anonymous"

    def test_plain_client_force_login_refused(self, https: Browser, alice: Any) -> None:
        """Django's Client.force_login gives no binding cookie, so the session is refused."""
        https.client.force_login(alice)
        with capture_logs() as logs:
            assert https.get("/dashboard/").status_code == 302
        [event] = audit(logs, "session.binding_mismatch")
        assert event["reason"] == "binding_mismatch"

    def test_anonymous_session_untouched(self, https: Browser) -> None:
        """A session without a signed-in user is neither checked nor flushed."""
        https.get(cookies_url(session="1"))
        key = https.session_key()
        with capture_logs() as logs:
            assert https.get("/").content == b"home: anonymous"
        assert logs == []
        assert https.stored_session() == {"visited": True}
        assert https.session_key() == key

    def test_no_session_cookie_no_session_load(
        self, https: Browser, django_assert_num_queries: Any
    ) -> None:
        """Without a session cookie the guard neither queries nor touches the session."""
        with django_assert_num_queries(0):
            assert https.get("/").content == b"home: anonymous"
        # A view that reads neither user nor session: the guard must not read them either.
        response = https.get("/test/headers/")
        assert "Cookie" not in response.get("Vary", "")


# --- SessionGuardMiddleware: lifetimes ----------------------------------------------


@pytest.mark.django_db
class TestLifetimes:
    def test_idle_expiry(self, signed_in: Browser) -> None:
        """No request for SESSION_IDLE_TIMEOUT ends the session (idle) and signs the person out."""
        signed_in.edit_session(**{sessions.SESSION_LAST_SEEN_KEY: time.time() - 1801})
        key = signed_in.session_key()
        with capture_logs() as logs:
            response = signed_in.get("/dashboard/")
        # Signed out, the request goes on: login_required sends the person to sign in.
        assert response["Location"] == "/sso/login/?next=/dashboard/"
        [event] = audit(logs, "session.expired")
        assert event["reason"] == "idle" and event["user"] == "alice"
        assert not SessionStore().exists(key)
        assert signed_in.get("/").content == b"home: anonymous"

    def test_public_page_continues_signed_out(self, signed_in: Browser) -> None:
        """An expired session does not block the page: it is served to an anonymous visitor."""
        signed_in.edit_session(**{sessions.SESSION_LAST_SEEN_KEY: time.time() - 1801})
        response = signed_in.get("/")
        assert response.status_code == 200
        assert response.content == b"home: anonymous"

    def test_absolute_expiry(self, signed_in: Browser) -> None:
        """A session older than SESSION_ABSOLUTE_TIMEOUT ends even when in constant use."""
        now = time.time()
        signed_in.edit_session(**{
            sessions.SESSION_CREATED_KEY: now - 43_201, sessions.SESSION_LAST_SEEN_KEY: now,
        })
        with capture_logs() as logs:
            assert signed_in.get("/dashboard/").status_code == 302
        [event] = audit(logs, "session.expired")
        assert event["reason"] == "absolute"
        assert signed_in.get("/").content == b"home: anonymous"

    def test_configured_timeouts(self, settings: Any, signed_in: Browser) -> None:
        """SESSION_IDLE_TIMEOUT and SESSION_ABSOLUTE_TIMEOUT are read from settings."""
        configure(settings, SESSION_IDLE_TIMEOUT=100, SESSION_ABSOLUTE_TIMEOUT=0)
        now = time.time()
        signed_in.edit_session(**{
            sessions.SESSION_CREATED_KEY: now - 10**6, sessions.SESSION_LAST_SEEN_KEY: now - 90,
        })
        assert signed_in.get("/dashboard/").status_code == 200
        signed_in.edit_session(**{sessions.SESSION_LAST_SEEN_KEY: now - 101})
        with capture_logs() as logs:
            assert signed_in.get("/dashboard/").status_code == 302
        assert audit(logs, "session.expired")[0]["reason"] == "idle"

    def test_corrupt_timestamp_expires(self, signed_in: Browser) -> None:
        """A session whose timestamp is unreadable is ended, not kept forever."""
        signed_in.edit_session(**{sessions.SESSION_CREATED_KEY: "yesterday"})
        with capture_logs() as logs:
            assert signed_in.get("/dashboard/").status_code == 302
        assert audit(logs, "session.expired")[0]["reason"] == "absolute"

    def test_activity_refreshes_last_seen(self, signed_in: Browser) -> None:
        """A request after the touch interval stores a new last-seen time."""
        signed_in.edit_session(**{sessions.SESSION_LAST_SEEN_KEY: time.time() - 120})
        before = time.time()
        assert signed_in.get("/dashboard/").status_code == 200
        assert signed_in.stored_session()[sessions.SESSION_LAST_SEEN_KEY] >= before

    def test_immediate_request_does_not_write(self, signed_in: Browser) -> None:
        """Within the touch interval the session is not written again."""
        seen = time.time() - 30
        signed_in.edit_session(**{sessions.SESSION_LAST_SEEN_KEY: seen})
        for _ in range(2):
            response = signed_in.get("/dashboard/")
            assert response.status_code == 200
            assert "sessionid" not in response.cookies  # Django re-sends it after a write
        assert signed_in.stored_session()[sessions.SESSION_LAST_SEEN_KEY] == seen

    @pytest.mark.parametrize(
        ("idle", "ago", "refreshed"),
        [(100, 15, True), (100, 5, False), (6000, 100, True), (6000, 50, False)],
    )
    def test_touch_interval(
        self, settings: Any, signed_in: Browser, idle: int, ago: int, refreshed: bool
    ) -> None:
        """Last-seen is refreshed at most every min(60, idle/10) seconds."""
        configure(settings, SESSION_IDLE_TIMEOUT=idle)
        seen = time.time() - ago
        signed_in.edit_session(**{sessions.SESSION_LAST_SEEN_KEY: seen})
        assert signed_in.get("/dashboard/").status_code == 200
        stored = signed_in.stored_session()[sessions.SESSION_LAST_SEEN_KEY]
        assert (stored != seen) is refreshed


# --- SessionGuardMiddleware: privilege change and sign-in ---------------------------


@pytest.mark.django_db
class TestKeyRotation:
    @pytest.mark.parametrize("change", ["is_staff", "is_superuser"])
    def test_privilege_gain_rotates(self, signed_in: Browser, alice: Any, change: str) -> None:
        """A user made staff or superuser gets a new session key and binding on the next request."""
        old_key = signed_in.session_key()
        old_binding = signed_in.cookies[HOST_BINDING].value
        setattr(alice, change, True)
        alice.save()
        response = signed_in.get("/")
        assert response.content == b"home: alice"
        assert response.cookies["sessionid"].value not in ("", old_key)
        assert response.cookies[HOST_BINDING].value != old_binding
        # The old pair is useless, the new one keeps working without rotating again.
        stale = Browser(signed_in.handler, "testserver", secure=True, user_agent=CHROME)
        stale.cookies["sessionid"] = old_key
        stale.cookies[HOST_BINDING] = old_binding
        assert stale.get("/").content == b"home: anonymous"
        again = signed_in.get("/")
        assert again.content == b"home: alice"
        assert "sessionid" not in again.cookies and HOST_BINDING not in again.cookies

    def test_privilege_loss_rotates(self, https: Browser, django_user_model: Any) -> None:
        """Rights removed also rotate the key."""
        boss = django_user_model.objects.create_user("boss", is_staff=True)
        https.login(boss)
        old_key = https.session_key()
        boss.is_staff = False
        boss.save()
        assert https.get("/").content == b"home: boss"
        assert https.session_key() != old_key
        assert not SessionStore().exists(old_key)

    def test_binding_cookie_attributes(self, signed_in: Browser, alice: Any) -> None:
        """The new binding cookie is __Host- on https: Secure, HttpOnly, Path=/, no Domain."""
        alice.is_staff = True
        alice.save()
        morsel = signed_in.get("/").cookies[HOST_BINDING]
        assert morsel["secure"] is True and morsel["httponly"] is True
        assert morsel["path"] == "/" and not morsel["domain"]
        assert morsel["samesite"] == "Lax"
        assert morsel["max-age"] == 43_200

    def test_binding_cookie_flags_without_transport_middleware(
        self, settings: Any, signed_in: Browser, alice: Any
    ) -> None:
        """The guard makes its binding cookie Secure and HttpOnly itself, not only via Transport."""
        settings.MIDDLEWARE = [
            m for m in settings.MIDDLEWARE if m != "secure_sso.middleware.TransportMiddleware"
        ]
        alice.is_staff = True
        alice.save()
        line = signed_in.get("/").cookies[HOST_BINDING].OutputString()
        assert "; Secure" in line and "; HttpOnly" in line and "; SameSite=Lax" in line

    def test_admin_password_sign_in_binds(self, https: Browser, django_user_model: Any) -> None:
        """Password sign-in at /admin/login/ rotates the session key and sets the binding cookie."""
        django_user_model.objects.create_superuser("root", "root@example.test", PASSWORD)
        https.get(cookies_url(session="1"))
        anonymous_key = https.session_key()
        response = https.post(
            "/admin/login/?next=/admin/",
            {"username": "root", "password": PASSWORD, "next": "/admin/"},
        )
        assert response.status_code == 302
        assert response["Location"] == "/admin/"
        assert response.cookies[HOST_BINDING].value
        assert response.cookies[HOST_BINDING]["secure"] is True
        assert https.session_key() != anonymous_key
        page = https.get("/admin/")
        assert page.status_code == 200
        assert https.get("/dashboard/").content == b"dashboard: root"

    def test_admin_sign_in_binding_is_required(
        self, https: Browser, django_user_model: Any
    ) -> None:
        """The session from a password sign-in is refused without its binding cookie."""
        django_user_model.objects.create_superuser("root", "root@example.test", PASSWORD)
        https.post("/admin/login/", {"username": "root", "password": PASSWORD, "next": "/admin/"})
        assert https.get("/dashboard/").status_code == 200
        thief = https.copy("sessionid")
        assert thief.get("/admin/").status_code == 302
        assert https.get("/dashboard/").status_code == 302


class TestPolicyOnEarlyRefusals:
    def test_https_required_page_has_csp(self, settings: Any) -> None:
        """The 403 sent before CSPMiddleware runs still carries the package's strict policy."""
        from django.test import Client

        response = Client().post("/")  # "testserver" is not loopback
        assert response.status_code == 403
        header = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in header and "default-src 'self'" in header


#: What an HTTP/1.1 header can carry once decoded (WSGI hands Django latin-1 text).
LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")


class TestArbitraryHeaders:
    @hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        user_agent=st.text(alphabet=LATIN1, max_size=300),
        forwarded=st.text(alphabet=LATIN1, max_size=40),
        binding_value=st.text(alphabet=LATIN1, max_size=200),
        extra_cookie=st.text(alphabet=LATIN1, max_size=80),
    )
    def test_signed_in_requests_never_500(
        self, django_user_model: Any, user_agent: str, forwarded: str, binding_value: str,
        extra_cookie: str,
    ) -> None:
        """Arbitrary User-Agent, X-Forwarded-Proto and cookies: a page or a refusal, never a 500."""
        user, _ = django_user_model.objects.get_or_create(username="hypo")
        browser = Client(SERVER_NAME="testserver", raise_request_exception=False)
        force_login(browser, user, user_agent=user_agent)
        headers = {"User-Agent": user_agent, "X-Forwarded-Proto": forwarded}
        browser.cookies[HOST_BINDING] = binding_value
        browser.cookies["extra"] = extra_cookie
        response = browser.get("/dashboard/", secure=True, headers=headers)
        assert response.status_code in (200, 302)
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/sso/login/?next=")


# --- Native async paths and cached settings (issue #8) --------------------------------


@pytest.fixture
def thread_switches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The qualified names of the callables run through sync_to_async, in order."""
    import asgiref.sync

    seen: list[str] = []
    original = asgiref.sync.SyncToAsync.__call__

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(self.func, "__qualname__", repr(self.func)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", spy)
    return seen


@pytest.mark.django_db
class TestAsyncNative:
    def test_csp_and_step_up_switch_no_thread(
        self, alice: Any, thread_switches: list[str]
    ) -> None:
        """Under ASGI, CSPMiddleware and StepUpMiddleware run on the event loop."""
        browser = Browser("asgi", "testserver", secure=True, user_agent=CHROME)
        browser.login(alice)
        response = browser.get("/dashboard/")
        assert response.status_code == 200 and "Content-Security-Policy" in response
        ours = [name for name in thread_switches if "CSPMiddleware" in name or "StepUp" in name]
        assert ours == [], thread_switches

    def test_step_up_urls_under_both_handlers(self, settings: Any, signed_in: Browser) -> None:
        """STEP_UP_URLS sends a signed-in user to step up; other pages are untouched."""
        configure(settings, STEP_UP_URLS=["/test/bill"])
        response = signed_in.get("/test/billing/")
        assert response.status_code == 302
        assert response["Location"] == "/sso/step-up/?next=%2Ftest%2Fbilling%2F"
        assert signed_in.get("/dashboard/").status_code == 200

    def test_step_up_urls_anonymous_passes(self, settings: Any, https: Browser) -> None:
        """Without a signed-in user the step-up gate leaves the view to decide."""
        configure(settings, STEP_UP_URLS=["/test/bill"])
        assert https.get("/test/billing/").status_code == 200

    def test_csp_subclass_with_own_hook_keeps_django_csp_path(self) -> None:
        """A subclass overriding a hook runs it as django-csp does (through a thread)."""
        from asgiref.sync import async_to_sync
        from django.http import HttpResponse
        from django.test import RequestFactory

        from secure_sso.middleware import CSPMiddleware

        calls: list[str] = []

        class Custom(CSPMiddleware):
            def process_request(self, request: Any) -> None:
                calls.append("request")
                super().process_request(request)

        async def view(request: Any) -> HttpResponse:
            return HttpResponse("ok")

        middleware = Custom(view)
        assert middleware._inline is False
        assert CSPMiddleware(view)._inline is True
        response = async_to_sync(middleware)(RequestFactory().get("/"))
        assert calls == ["request"]
        assert "default-src 'self'" in response["Content-Security-Policy"]


class TestReportOnlyPolicy:
    def test_setting_change_takes_effect(self, settings: Any, https: Browser) -> None:
        """CONTENT_SECURITY_POLICY_REPORT_ONLY set or removed applies to the next response."""
        assert "Content-Security-Policy-Report-Only" not in https.get("/")
        settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {
            "DIRECTIVES": {"default-src": ["'self'"], "report-uri": "/csp-report/"}
        }
        response = https.get("/")
        assert response["Content-Security-Policy-Report-Only"].startswith("default-src 'self'")
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
        del settings.CONTENT_SECURITY_POLICY_REPORT_ONLY
        assert "Content-Security-Policy-Report-Only" not in https.get("/")
