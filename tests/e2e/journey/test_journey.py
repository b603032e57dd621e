"""Issue #7: the whole journey in a real browser, over https, against the real provider.

Headless Debian Chromium (Playwright) uses the example site served by gunicorn over TLS
with its production settings, and the development provider (npm ``oidc-provider``) over
TLS. One person signs in, enrolls an authenticator app, opens the sensitive page, is
asked again once the step-up window has passed, and signs out of the site and the
provider; then a reviewer, staff through the provider's group, reads the journey in the
audit admin, and a stolen copy of the reviewer's session cookie is refused.

After every step the browser itself is asked: no Content-Security-Policy violation on
any page so far and a strict policy on every page of the site, every cookie it holds for
the site Secure, HttpOnly and SameSite=Lax, HSTS on every document the site sent
(redirects included; static files come from the test server's static handler, see
``wsgi.py``). A screenshot of each step goes to
``test-artifacts/journey/``; ``make screenshots`` also refreshes README's
``docs/screenshots/``.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from base64 import b32decode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect

from tests.e2e.journey.chromium import (
    BrowserWatch,
    cookie_problems,
    csp_header_problems,
    csp_problems,
    hsts_problems,
)
from tests.e2e.journey.conftest import ACCOUNTS, JOURNEY_USER, REVIEWER, STEP_UP_WINDOW
from tests.e2e.journey.https_site import REPO_ROOT, HttpsSite

pytestmark = pytest.mark.e2e

#: ``make screenshots`` sets this: README's pictures are written to docs/screenshots/.
README_SCREENSHOTS = os.environ.get("UPDATE_README_SCREENSHOTS") == "1"
README_SCREENSHOT_DIR = REPO_ROOT / "docs" / "screenshots"

#: The example's cookies and the SameSite each must carry: SESSION_COOKIE_SAMESITE="Lax",
#: Django's CSRF default "Lax", the binding cookie's "Lax"; any other cookie gets
#: SECURE_SSO["COOKIE_SAMESITE"] (default "Lax") from TransportMiddleware.
BINDING_COOKIE = "__Host-secure_sso_binding"
EXPECTED_SAMESITE = {"sessionid": "Lax", "csrftoken": "Lax", BINDING_COOKIE: "Lax"}
DEFAULT_SAMESITE = "Lax"
#: SECURE_SSO["JS_READABLE_COOKIES"] of the example: none, so every cookie is HttpOnly.
JS_READABLE: tuple[str, ...] = ()
HSTS_MIN_AGE = 31_536_000  # the example's SECURE_SSO["HSTS_SECONDS"]

#: The journey user's events (type, outcome), oldest first, as the audit admin lists them:
#: the sign-in, the enrollment (which is the first step-up), the step-up asked again
#: once the window closed and passed with a new code, the sign-out.
EXPECTED_EVENTS = [
    ("auth.login.success", "success"),
    ("mfa.enrolled", "success"),
    ("mfa.challenge", "success"),
    ("mfa.success", "success"),
    ("auth.logout", "success"),
]

TOTP_STEP = 30
TIMEOUT_MS = 30_000
NAVIGATION_TIMEOUT_MS = 60_000


class Journey:
    """Numbered steps, each followed by a screenshot and the browser-side checks."""

    def __init__(self, site: HttpsSite, artifacts: Path) -> None:
        self.site = site
        self.artifacts = artifacts
        self.watch = BrowserWatch(site.url)
        self.number = 0
        self.contexts: list[BrowserContext] = []

    def new_context(self, browser: Browser) -> BrowserContext:
        """A fresh browser profile (no cookies), watched from its first page on."""
        context = browser.new_context(
            viewport={"width": 1280, "height": 800}, locale="en-US", timezone_id="UTC"
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        self.contexts.append(context)
        return self.watch.attach(context)

    @contextlib.contextmanager
    def step(self, page: Page, name: str) -> Iterator[None]:
        self.number += 1
        label = f"{self.number:02d}-{name}"
        try:
            yield
            self.check_browser(page.context)
        except BaseException as error:
            with contextlib.suppress(Exception):
                page.screenshot(path=self.artifacts / f"{label}-FAILED.png", full_page=True)
            error.add_note(f"journey step {label}, at {page.url}")
            raise
        page.screenshot(path=self.artifacts / f"{label}.png", full_page=True)

    def check_browser(self, context: BrowserContext) -> None:
        """What the browser saw so far: CSP violations and headers, cookie flags, HSTS."""
        problems = csp_problems(self.watch.csp_violations)
        problems += cookie_problems(
            context.cookies(self.site.url),
            expected_samesite=EXPECTED_SAMESITE,
            default_samesite=DEFAULT_SAMESITE,
            js_readable=JS_READABLE,
        )
        documents = [(r.url, r.status, r.all_headers()) for r in self.watch.take_documents()]
        problems += hsts_problems(documents, min_max_age=HSTS_MIN_AGE)
        problems += csp_header_problems(documents)
        assert not problems, "\n".join(problems)

    def save_console(self) -> None:
        (self.artifacts / "console.log").write_text("\n".join(self.watch.console) + "\n")


def redirect_chain(response: Response | None) -> list[str]:
    """URLs the navigation went through, first to last."""
    assert response is not None
    chain = []
    request: Any = response.request
    while request is not None:
        chain.append(request.url)
        request = request.redirected_from
    return chain[::-1]


def authenticator_code(secret: str, at: float | None = None) -> str:
    """What an authenticator app shows for the key on the enrollment page (RFC 6238:
    SHA-1, 30 s, 6 digits)."""
    key = b32decode(secret.replace(" ", "").upper())
    totp = TOTP(key, step=TOTP_STEP, digits=6)
    if at is not None:
        totp.time = at
    return f"{totp.token():06d}"


def sign_in_at_provider(page: Page, site: HttpsSite, login: str) -> None:
    """The provider's login form (any password), then its consent page."""
    expect(page.locator("input[name=login]")).to_be_visible()
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password works at the development provider")
    page.get_by_role("button", name="Sign-in").click()
    expect(page.get_by_role("button", name="Continue")).to_be_visible()
    assert page.url.startswith(f"{site.provider_url}/interaction/")


def audit_rows(page: Page) -> list[dict[str, str]]:
    """The audit admin's list, oldest first (the admin shows the newest first)."""
    rows = page.eval_on_selector_all(
        "#result_list tbody tr",
        """rows => rows.map(row => Object.fromEntries(
            ['seq', 'event_type', 'outcome', 'reason', 'username'].map(
                name => [name, row.querySelector('.field-' + name).innerText.trim()])))""",
    )
    return sorted(rows, key=lambda row: int(row["seq"]))


def show(rows: list[dict[str, str]]) -> str:
    """The audit rows, one a line, for assertion messages."""
    return "\n".join(" | ".join(row.values()) for row in rows)


def readme_screenshot(page: Page, name: str, selector: str, *, margin: int = 16) -> None:
    """With ``make screenshots``: the element and a margin around it, for README."""
    if not README_SCREENSHOTS:
        return
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    x, y = max(0.0, box["x"] - margin), max(0.0, box["y"] - margin)
    clip = {
        "x": x, "y": y,
        "width": box["x"] + box["width"] + margin - x,
        "height": box["y"] + box["height"] + margin - y,
    }
    README_SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=README_SCREENSHOT_DIR / name, clip=clip, full_page=True,
                    animations="disabled")


def test_the_whole_journey_in_chromium_over_https(
    https_site: HttpsSite, chromium: Browser, artifacts: Path
) -> None:
    """Sign-in, TOTP enrollment, step-up and its expiry, sign-out, the audit trail and a
    stolen session cookie, in Chromium over https, with every control checked on the way."""
    site, journey = https_site, Journey(https_site, artifacts)
    try:
        _person(journey, chromium)
        _reviewer(journey, chromium)
    finally:
        journey.save_console()
        for context in journey.contexts:
            with contextlib.suppress(Exception):
                context.close()
    assert site.provider.running


def _person(journey: Journey, chromium: Browser) -> None:
    site = journey.site
    context = journey.new_context(chromium)
    page = context.new_page()

    with journey.step(page, "signed-out-dashboard-redirects-to-provider"):
        chain = redirect_chain(page.goto(f"{site.url}/dashboard/"))
        assert chain[:2] == [f"{site.url}/dashboard/", f"{site.url}/sso/login/?next=/dashboard/"]
        assert chain[2].startswith(f"{site.provider_url}/auth?")
        assert "code_challenge_method=S256" in chain[2]
        expect(page.locator("input[name=login]")).to_be_visible()

    with journey.step(page, "provider-consent"):
        sign_in_at_provider(page, site, JOURNEY_USER)

    with journey.step(page, "dashboard-shows-the-user"):
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(f"{site.url}/dashboard/")
        expect(page.locator("#dashboard-user")).to_have_text(JOURNEY_USER)
        expect(page.locator("#who")).to_have_text(JOURNEY_USER)
        signed_in = {cookie["name"]: cookie["value"] for cookie in context.cookies(site.url)}
        assert {"sessionid", "csrftoken", BINDING_COOKIE} <= set(signed_in), signed_in

    with journey.step(page, "totp-enrollment"):
        page.get_by_role("link", name="Account security").click()
        page.wait_for_url(re.compile(r"/sso/mfa/enroll/"))
        expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
        secret = page.locator("#totp-secret").inner_text()
        expect(page.locator("figure svg")).to_be_visible()  # the QR code, inline SVG
        readme_screenshot(page, "totp-enrollment.png", "main")

    with journey.step(page, "recovery-codes"):
        enrolled_at = time.time()
        page.fill("#id_code", authenticator_code(secret, enrolled_at))
        page.get_by_role("button", name="Confirm and turn on").click()
        expect(page.locator("#recovery-codes li")).to_have_count(10)

    with journey.step(page, "sensitive-page-opens"):
        page.get_by_role("link", name="Continue").click()
        page.wait_for_url(f"{site.url}/account/security/")
        expect(page.locator("#step-up-ok")).to_be_visible()
        expect(page.locator("main li")).to_have_text(["Authenticator app", "Recovery codes"])

    with journey.step(page, "step-up-asked-again"):
        # Past the step-up window; and in the next TOTP time step, since a code from the
        # step used to enroll would be refused as a replay (as it must be).
        window_ends = time.time() + STEP_UP_WINDOW + 1
        next_step = (int(enrolled_at) // TOTP_STEP + 1) * TOTP_STEP + 1
        time.sleep(max(0.0, max(window_ends, next_step) - time.time()))
        page.get_by_role("link", name="Account security").click()
        page.wait_for_url(re.compile(r"/sso/step-up/\?"))
        expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()

    with journey.step(page, "step-up-with-a-new-code"):
        page.fill("#id_code", authenticator_code(secret))
        page.get_by_role("button", name="Confirm", exact=True).click()
        page.wait_for_url(f"{site.url}/account/security/")
        expect(page.locator("#step-up-ok")).to_be_visible()

    with journey.step(page, "provider-sign-out"):
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{site.provider_url}/session/end**")
        expect(page.get_by_role("button", name="Yes, sign me out")).to_be_visible()

    with journey.step(page, "home-signed-out"):
        page.get_by_role("button", name="Yes, sign me out").click()
        page.wait_for_url(f"{site.url}/")
        expect(page.locator("#signed-out")).to_be_visible()
        expect(page.get_by_role("link", name="Sign in")).to_be_visible()
        # The signed-in session is gone: whatever session cookie is left is another one.
        left = {cookie["name"]: cookie["value"] for cookie in context.cookies(site.url)}
        assert left.get("sessionid") != signed_in["sessionid"]

    with journey.step(page, "provider-asks-for-a-login-again"):
        # Signed out at the provider too: no silent sign-in, its login form again.
        page.goto(f"{site.url}/dashboard/")
        page.wait_for_url(f"{site.provider_url}/interaction/**")
        expect(page.locator("input[name=login]")).to_be_visible()


def _reviewer(journey: Journey, chromium: Browser) -> None:
    site = journey.site
    context = journey.new_context(chromium)
    page = context.new_page()

    with journey.step(page, "admin-sign-in-button"):
        page.goto(f"{site.url}/admin/")
        page.wait_for_url(f"{site.url}/admin/login/?next=/admin/")
        expect(page.get_by_role("link", name="Sign in with SSO")).to_be_visible()
        readme_screenshot(page, "admin-sign-in.png", "#container")

    with journey.step(page, "reviewer-at-provider"):
        page.get_by_role("link", name="Sign in with SSO").click()
        page.wait_for_url(f"{site.provider_url}/interaction/**")
        sign_in_at_provider(page, site, REVIEWER)

    with journey.step(page, "admin-index"):
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(f"{site.url}/admin/")
        # Staff through the provider's group; the admin greets them by their given name.
        expect(page.locator("#user-tools strong")).to_have_text(ACCOUNTS[REVIEWER]["given_name"])
        expect(page.get_by_role("link", name="Security audit")).to_be_visible()

    with journey.step(page, "audit-admin-shows-the-journey"):
        page.get_by_role("link", name="Audit events").first.click()
        page.wait_for_url(f"{site.url}/admin/secure_sso_audit/auditevent/")
        rows = audit_rows(page)
        person = [row for row in rows if row["username"] == JOURNEY_USER]
        events = [(row["event_type"], row["outcome"]) for row in person]
        assert events == EXPECTED_EVENTS, show(rows)
        # The provider's back-channel call after its sign-out reached the site over
        # https (the site had already ended that session itself).
        backchannel = [row for row in rows if row["event_type"] == "sso.backchannel_logout"]
        assert [row["outcome"] for row in backchannel] == ["success"], show(rows)
        assert int(backchannel[0]["seq"]) > int(person[-1]["seq"]), show(rows)
        assert rows[-1]["event_type"] == "auth.login.success"
        assert rows[-1]["username"] == REVIEWER
        if README_SCREENSHOTS:
            page.locator("#toggle-nav-sidebar").click()  # more room for the table
            readme_screenshot(page, "audit-admin.png", ".changelist-form-container")
            page.locator("#toggle-nav-sidebar").click()

    session_cookie = [c for c in context.cookies(site.url) if c["name"] == "sessionid"]
    assert len(session_cookie) == 1
    thief = journey.new_context(chromium)
    thief_page = thief.new_page()

    with journey.step(thief_page, "stolen-session-cookie-refused"):
        # Another browser holding the reviewer's session cookie, without the binding cookie.
        thief.add_cookies(session_cookie)
        chain = redirect_chain(thief_page.goto(f"{site.url}/admin/secure_sso_audit/auditevent/"))
        sign_in = f"{site.url}/sso/login/?next=%2Fadmin%2Fsecure_sso_audit%2Fauditevent%2F"
        assert chain[1:2] == [sign_in], f"the stolen session cookie was not refused: {chain}"
        thief_page.wait_for_url(f"{site.provider_url}/interaction/**")
        expect(thief_page.locator("input[name=login]")).to_be_visible()

    with journey.step(page, "refusal-ended-the-session-and-was-audited"):
        # Fail closed: the refused cookie's session is gone for its owner too. The owner
        # signs in again (the provider still knows them) and finds the refusal recorded.
        page.reload()
        page.wait_for_url(re.compile(r"/admin/login/\?next="))
        page.get_by_role("link", name="Sign in with SSO").click()
        page.wait_for_url(f"{site.url}/admin/secure_sso_audit/auditevent/")
        rows = audit_rows(page)
        mismatch = [row for row in rows if row["event_type"] == "session.binding_mismatch"]
        assert [(r["username"], r["reason"]) for r in mismatch] == [
            (REVIEWER, "binding_mismatch")
        ], show(rows)
        assert rows[-1]["event_type"] == "auth.login.success"
        assert rows[-1]["username"] == REVIEWER
