"""A headless Chromium for the browser tests, from the system packages only.

The browser (``/usr/bin/chromium``) and its driver (``/usr/bin/chromedriver``)
come from Debian's ``chromium`` and ``chromium-driver`` packages, installed by
``.ci/install-system-deps``.  The driver is given to Selenium explicitly, so
Selenium Manager is never run and nothing is downloaded.  When either binary is
missing :func:`make_browser` raises: the browser tests fail, they never skip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = (
    "run `.ci/install-system-deps` as root "
    "(it installs Debian's `chromium` and `chromium-driver` packages)"
)

# Selenium Manager is bypassed by giving the driver path; these make sure that,
# should it ever run anyway, it neither downloads anything nor sends statistics.
SELENIUM_ENV = {"SE_AVOID_STATS": "true", "SE_OFFLINE": "true"}

DISABLED_FEATURES = (
    "Translate",
    "MediaRouter",
    "OptimizationHints",
    "AutofillServerCommunication",
    "PasswordLeakDetection",
)

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=" + ",".join(DISABLED_FEATURES),
    # The tests only ever talk to loopback: no other name resolves, so Chromium
    # cannot reach out (fonts, autofill, password leak checks, updates, ...).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--window-size=1280,900",
)

# Password manager off: no save/leak-check prompts or lookups after the login form.
CHROMIUM_PREFS = {
    "credentials_enable_service": False,
    "profile.password_manager_enabled": False,
    "profile.password_manager_leak_detection": False,
    "autofill.profile_enabled": False,
    "translate.enabled": False,
}


class BrowserUnavailable(RuntimeError):
    """Chromium or chromedriver is not installed where the tests expect it."""


def _check_binaries() -> None:
    missing = [
        str(p) for p in (CHROMIUM, CHROMEDRIVER) if not (p.is_file() and os.access(p, os.X_OK))
    ]
    if missing:
        raise BrowserUnavailable(
            f"The browser tests need {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} missing: {INSTALL_HINT}."
        )


class _Browser(webdriver.Chrome):
    """``webdriver.Chrome`` that also removes its temporary profile on ``quit()``."""

    _profile_dir: str = ""

    def quit(self) -> None:
        try:
            super().quit()
        finally:
            if self._profile_dir:
                shutil.rmtree(self._profile_dir, ignore_errors=True)
                self._profile_dir = ""


def make_browser(*, page_load_timeout: float = 30.0) -> webdriver.Chrome:
    """Start headless Chromium with a fresh profile; the caller must ``quit()`` it."""
    _check_binaries()
    os.environ.update(SELENIUM_ENV)

    profile_dir = tempfile.mkdtemp(prefix="secure-sso-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_experimental_option("prefs", CHROMIUM_PREFS)

    service = Service(executable_path=str(CHROMEDRIVER))
    try:
        driver = _Browser(options=options, service=service)
    except Exception:
        shutil.rmtree(profile_dir, ignore_errors=True)
        raise
    driver._profile_dir = profile_dir
    driver.set_page_load_timeout(page_load_timeout)
    return driver


__all__ = ["CHROMEDRIVER", "CHROMIUM", "BrowserUnavailable", "make_browser"]
