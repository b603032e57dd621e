"""The journey's browser-side checks catch a switched-off control (no browser needed).

Each case is what Chromium reports when one control of the example is off: a cookie
without a flag, a missing HSTS header, an inline script without the nonce.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.journey.chromium import (
    cookie_problems,
    csp_header_problems,
    csp_problems,
    hsts_problems,
)

EXPECTED = {"sessionid": "Lax", "csrftoken": "Lax", "__Host-secure_sso_binding": "Lax"}


def cookie(name: str, **flags: Any) -> dict[str, Any]:
    """A cookie as ``BrowserContext.cookies()`` returns it, hardened unless told otherwise."""
    base = {"name": name, "value": "v", "domain": "localhost", "path": "/",
            "secure": True, "httpOnly": True, "sameSite": "Lax"}
    return base | flags


def problems(*cookies: dict[str, Any], js_readable: tuple[str, ...] = ()) -> list[str]:
    return cookie_problems(
        cookies, expected_samesite=EXPECTED, default_samesite="Lax", js_readable=js_readable
    )


class TestCookieProblems:
    def test_hardened_cookies_pass(self) -> None:
        """Secure, HttpOnly, SameSite=Lax session, CSRF and binding cookies are fine."""
        assert problems(*(cookie(name) for name in EXPECTED)) == []

    @pytest.mark.parametrize(
        ("flags", "expected"),
        [
            ({"secure": False}, "cookie 'sessionid' is not Secure"),
            ({"httpOnly": False}, "cookie 'sessionid' is not HttpOnly"),
            ({"sameSite": "None"}, "cookie 'sessionid' has SameSite=None, not Lax"),
        ],
    )
    def test_each_missing_flag_is_reported(self, flags: dict[str, Any], expected: str) -> None:
        """Turning off one flag of one cookie is one problem, naming cookie and flag."""
        assert problems(cookie("sessionid", **flags), cookie("csrftoken")) == [expected]

    def test_unknown_cookie_needs_the_default_samesite(self) -> None:
        """A cookie the example does not list must still carry the default SameSite."""
        assert problems(cookie("messages", sameSite="Strict")) == [
            "cookie 'messages' has SameSite=Strict, not Lax"
        ]

    def test_js_readable_cookie_may_lack_httponly(self) -> None:
        """Only a cookie listed as JS-readable may be without HttpOnly."""
        assert problems(cookie("csrftoken", httpOnly=False), js_readable=("csrftoken",)) == []

    def test_host_prefixed_cookie_must_be_host_only(self) -> None:
        """A ``__Host-`` cookie with a Domain or another path is reported."""
        assert problems(cookie("__Host-secure_sso_binding", domain=".localhost")) == [
            "cookie '__Host-secure_sso_binding' is not host-only with Path=/"
        ]


class TestHstsProblems:
    def test_long_max_age_passes(self) -> None:
        """A year of HSTS, with includeSubDomains and preload, is enough."""
        header = {"strict-transport-security": "max-age=31536000; includeSubDomains; preload"}
        assert hsts_problems([("https://s/", 200, header)], min_max_age=31_536_000) == []

    @pytest.mark.parametrize("value", [None, "max-age=0", "max-age=300", "includeSubDomains"])
    def test_missing_or_short_header_is_reported(self, value: str | None) -> None:
        """No header, a zero or short max-age, or none at all is a problem."""
        headers = {} if value is None else {"strict-transport-security": value}
        assert len(hsts_problems([("https://s/", 302, headers)], min_max_age=31_536_000)) == 1


class TestCspProblems:
    def test_no_violation_passes(self) -> None:
        """A journey without violations has no CSP problem."""
        assert csp_problems([]) == []

    def test_each_violation_is_reported(self) -> None:
        """An inline script without the nonce, as the listener reports it, is a problem."""
        violation = {"effectiveDirective": "script-src-elem", "blockedURI": "inline"}
        assert csp_problems([violation]) == [f"CSP violation: {violation}"]


class TestCspHeaderProblems:
    HTML = {"content-type": "text/html; charset=utf-8"}

    def test_strict_policy_passes(self) -> None:
        """A nonce-based policy on an HTML page is fine; redirects need none."""
        policy = "default-src 'self'; script-src 'self' 'nonce-abc'"
        responses = [
            ("https://s/", 200, self.HTML | {"content-security-policy": policy}),
            ("https://s/r/", 302, {}),
        ]
        assert csp_header_problems(responses) == []

    @pytest.mark.parametrize("policy", [None, "default-src 'self'; script-src 'unsafe-inline'"])
    def test_missing_or_unsafe_inline_policy_is_reported(self, policy: str | None) -> None:
        """An HTML page without a policy, or with 'unsafe-inline', is a problem."""
        headers = dict(self.HTML)
        if policy is not None:
            headers["content-security-policy"] = policy
        assert len(csp_header_problems([("https://s/", 200, headers)])) == 1
