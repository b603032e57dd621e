"""Debian's Chromium under Playwright, and what the journey watches the browser for.

Playwright for Python drives ``/usr/bin/chromium`` (Debian's ``chromium`` package,
installed by ``.ci/install-system-deps``) through ``executable_path``: Playwright's own
browsers are never downloaded. A missing Chromium raises :class:`BrowserUnavailable`, so
the journey fails rather than skips.

Chromium trusts the test server certificate by its key only
(``--ignore-certificate-errors-spki-list``), resolves nothing but loopback
(``--host-resolver-rules``) and runs with background networking off, so the journey
never reaches the internet.

:class:`BrowserWatch` records, for every page of a context: Content-Security-Policy
violations (a ``securitypolicyviolation`` listener injected before any page script runs,
plus Chromium's own console reports), console messages, and the site's document
responses. The ``*_problems`` functions turn what was seen into readable failures; they
are pure, so ``test_checks.py`` shows each one catching a switched-off control.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Playwright, Response

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = (
    "run `.ci/install-system-deps` as root (it installs Debian's `chromium` package); "
    "Playwright's bundled browsers are not used"
)

#: The flags of issue #7, then the ones that keep a test browser quiet and offline.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,MediaRouter,OptimizationHints,"
    "AutofillServerCommunication,PasswordLeakDetection",
    # localhost goes to IPv4 loopback, where gunicorn listens; nothing else resolves
    # (the provider's login page asks for Google Fonts: that request fails, offline).
    "--host-resolver-rules=MAP localhost 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)

#: Recorded before any script of the page: a CSP violation reaches Python even when
#: the page's own scripts are blocked or never run.
_CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (event) => {
  window.__journeyCspViolation({
    documentURI: event.documentURI,
    violatedDirective: event.violatedDirective,
    effectiveDirective: event.effectiveDirective,
    blockedURI: event.blockedURI,
    sourceFile: event.sourceFile,
    lineNumber: event.lineNumber,
    sample: event.sample,
    disposition: event.disposition,
  });
}, true);
"""


class BrowserUnavailable(RuntimeError):
    """Debian's Chromium is not installed where the journey expects it."""


def launch_chromium(playwright: Playwright, *, trusted_spki: Iterable[str] = ()) -> Browser:
    """Headless Debian Chromium trusting only the given server keys beyond its CA store.

    Args:
        playwright: the started ``sync_playwright()`` object.
        trusted_spki: base64 SHA-256 pins of server public keys to accept.

    Raises:
        BrowserUnavailable: ``/usr/bin/chromium`` is missing.
    """
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        raise BrowserUnavailable(f"The browser journey needs {CHROMIUM}: {INSTALL_HINT}.")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    args = list(CHROMIUM_FLAGS)
    pins = ",".join(trusted_spki)
    if pins:
        args.append(f"--ignore-certificate-errors-spki-list={pins}")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class BrowserWatch:
    """What the pages of one or more browser contexts showed, reported by Chromium."""

    site: str
    csp_violations: list[dict[str, Any]] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    documents: list[Response] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> BrowserContext:
        """Watch every page of ``context`` from its first script on; returns ``context``."""
        context.expose_binding("__journeyCspViolation", self._on_violation)
        context.add_init_script(_CSP_LISTENER)
        context.on("console", self._on_console)
        context.on("response", self._on_response)
        return context

    def _on_violation(self, source: Any, violation: dict[str, Any]) -> None:
        self.csp_violations.append(dict(violation))

    def _on_console(self, message: Any) -> None:
        where = message.location.get("url", "") if message.location else ""
        line = f"[{message.type}] {message.text} ({where})"
        self.console.append(line)
        # Chromium reports a blocked resource in the console too; count it even if the
        # DOM event was missed (e.g. a violation during a navigation away).
        if message.type == "error" and "Content Security Policy" in message.text:
            self.csp_violations.append({"console": line})

    def _on_response(self, response: Response) -> None:
        if response.request.resource_type == "document" and origin(response.url) == self.site:
            self.documents.append(response)

    def take_documents(self) -> list[Response]:
        """The site's document responses since the last call."""
        taken, self.documents = self.documents, []
        return taken


# --- Checks: each returns a list of human-readable problems, empty when all is well ----


def csp_problems(violations: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every Content-Security-Policy violation the browser reported is a problem."""
    return [f"CSP violation: {dict(v)}" for v in violations]


def cookie_problems(
    cookies: Iterable[Mapping[str, Any]],
    *,
    expected_samesite: Mapping[str, str],
    default_samesite: str,
    js_readable: Iterable[str] = (),
) -> list[str]:
    """Flags of the cookies the browser holds for the site (``context.cookies(url)``).

    Every cookie must be Secure; HttpOnly unless named in ``js_readable``; SameSite as in
    ``expected_samesite`` (by name) or else ``default_samesite``. A ``__Host-`` cookie must
    also be host-only with ``Path=/`` (the browser enforces that; checked so that a
    future rename away from the prefix is noticed too).
    """
    readable = set(js_readable)
    problems = []
    for cookie in cookies:
        name = cookie["name"]
        if not cookie.get("secure"):
            problems.append(f"cookie {name!r} is not Secure")
        if name not in readable and not cookie.get("httpOnly"):
            problems.append(f"cookie {name!r} is not HttpOnly")
        want = expected_samesite.get(name, default_samesite)
        if cookie.get("sameSite") != want:
            problems.append(f"cookie {name!r} has SameSite={cookie.get('sameSite')}, not {want}")
        if name.startswith("__Host-") and (
            cookie.get("path") != "/" or str(cookie.get("domain", "")).startswith(".")
        ):
            problems.append(f"cookie {name!r} is not host-only with Path=/")
    return problems


def hsts_problems(
    responses: Iterable[tuple[str, int, Mapping[str, str]]], *, min_max_age: int
) -> list[str]:
    """Each (url, status, headers) of the site carries ``Strict-Transport-Security``
    with at least ``min_max_age`` seconds (header names in lower case)."""
    problems = []
    for url, status, headers in responses:
        value = headers.get("strict-transport-security", "")
        max_age = 0
        for part in value.split(";"):
            key, _, number = part.strip().partition("=")
            if key.lower() == "max-age" and number.strip().isdigit():
                max_age = int(number)
        if max_age < min_max_age:
            problems.append(f"{status} {url}: Strict-Transport-Security is {value!r}")
    return problems


def csp_header_problems(responses: Iterable[tuple[str, int, Mapping[str, str]]]) -> list[str]:
    """Each HTML page (status 200) of the site carries a Content-Security-Policy without
    ``'unsafe-inline'``: without a policy, "no violation" would prove nothing."""
    problems = []
    for url, status, headers in responses:
        if status != 200 or not headers.get("content-type", "").startswith("text/html"):
            continue
        policy = headers.get("content-security-policy", "")
        if "default-src" not in policy or "'unsafe-inline'" in policy:
            problems.append(f"{status} {url}: Content-Security-Policy is {policy!r}")
    return problems


__all__ = [
    "CHROMIUM",
    "BrowserUnavailable",
    "BrowserWatch",
    "cookie_problems",
    "csp_header_problems",
    "csp_problems",
    "hsts_problems",
    "launch_chromium",
    "origin",
]
