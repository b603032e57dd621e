"""Session binding over real HTTP: a session cookie stolen from a signed-in browser is useless."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests
from django.contrib.sessions.models import Session
from structlog.testing import capture_logs

from tests.e2e.test_signin_flow import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
BINDING = "secure_sso_binding"  # live_server is loopback http: no __Host- prefix


def replay(live_server, path: str, cookies: dict[str, str], user_agent: str | None = None):
    """A request from another machine, carrying only ``cookies``."""
    headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}
    if user_agent:
        headers["User-Agent"] = user_agent
    return requests.get(
        f"{live_server.url}{path}", headers=headers, allow_redirects=False, timeout=10
    )


def stolen(browser: requests.Session, *names: str) -> dict[str, str]:
    return {name: browser.cookies[name] for name in names}


class TestStolenSessionCookie:
    def test_legitimate_browser_keeps_working(self, sso_live, live_server):
        """The browser that signed in stays signed in across requests, with one session key."""
        browser, _, _ = sign_in(live_server, "judy")
        key = browser.cookies["sessionid"]
        assert browser.cookies[BINDING]
        for _ in range(3):
            page = browser.get(f"{live_server.url}/dashboard/", allow_redirects=False)
            assert page.status_code == 200
            assert page.text == "dashboard: judy"
        assert browser.cookies["sessionid"] == key

    def test_session_cookie_alone_is_refused(self, sso_live, live_server):
        """Replaying only the session cookie signs nobody in and ends the victim's session too."""
        browser, _, _ = sign_in(live_server, "peggy")
        assert browser.get(f"{live_server.url}/").text == "home: peggy"
        key = browser.cookies["sessionid"]
        with capture_logs() as logs:
            attack = replay(live_server, "/dashboard/", stolen(browser, "sessionid"))
        assert attack.status_code == 302
        assert attack.headers["Location"] == f"/sso/login/?{urlencode({'next': '/dashboard/'})}"
        # The live server runs in another thread of this process: structlog's capture sees it.
        mismatches = [entry for entry in logs if entry["event"] == "session.binding_mismatch"]
        assert [(e["reason"], e["user"]) for e in mismatches] == [
            ("binding_mismatch", "peggy")
        ]
        # The session row is gone, so the legitimate browser is signed out as well.
        assert not Session.objects.filter(session_key=key).exists()
        assert browser.get(f"{live_server.url}/").text == "home: anonymous"
        page = browser.get(f"{live_server.url}/dashboard/", allow_redirects=False)
        assert page.status_code == 302

    def test_both_cookies_from_another_browser_family_are_refused(self, sso_live, live_server):
        """Session and binding cookies copied together still fail from a different browser."""
        browser, _, _ = sign_in(live_server, "niaj")
        cookies = stolen(browser, "sessionid", BINDING)
        # Same cookies, same kind of client: accepted (the binding itself is right).
        assert replay(live_server, "/", cookies).text == "home: niaj"
        with capture_logs() as logs:
            attack = replay(live_server, "/dashboard/", cookies, user_agent=FIREFOX)
        assert attack.status_code == 302
        assert attack.headers["Location"].startswith("/sso/login/?next=")
        assert [e["reason"] for e in logs if e["event"] == "session.binding_mismatch"] == [
            "binding_mismatch"
        ]
        assert browser.get(f"{live_server.url}/").text == "home: anonymous"
