"""A person's sign-in and sign-out, clicked through in a real (headless) Chromium.

The browser talks to pytest-django's live server and to the real npm
``oidc-provider`` (example/devidp) exactly as a user's browser would: it
follows the redirects, fills the provider's login form, grants consent and
confirms sign-out at the provider.  Chromium comes from the system packages
(see tests/e2e/browser.py); when it is missing these tests fail, never skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar
from urllib.parse import urlsplit

import pytest
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.browser import make_browser

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WAIT = 15  # seconds; every step waits for a condition, never for a fixed time
T = TypeVar("T")
PASSWORD = "correct horse battery staple"  # the development provider accepts any


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    driver = make_browser()
    try:
        yield driver
    finally:
        driver.quit()


# -- helpers -----------------------------------------------------------------


def body_text(browser: WebDriver) -> str:
    try:
        return browser.find_element(By.TAG_NAME, "body").text.strip()
    except WebDriverException:  # the page is being replaced under us
        return ""


def until(browser: WebDriver, condition: Callable[[WebDriver], T], what: str) -> T:
    """Wait (up to ``WAIT`` s) for ``condition``; on timeout say where the browser is."""
    try:
        return WebDriverWait(browser, WAIT).until(condition)
    except TimeoutException as exc:
        raise AssertionError(
            f"timed out waiting for {what}; the browser is at {browser.current_url} "
            f"showing {body_text(browser)[:500]!r}"
        ) from exc


def wait_for_page(browser: WebDriver, url: str, text: str) -> None:
    """Wait until the browser shows ``url`` and its body starts with ``text``."""
    until(
        browser,
        lambda driver: driver.current_url == url and body_text(driver).startswith(text),
        f"{url} showing {text!r}",
    )


def wait_for_admin_index(browser: WebDriver) -> None:
    heading = (By.TAG_NAME, "h1")
    until(
        browser,
        ec.text_to_be_present_in_element(heading, "Site administration"),
        "the admin index",
    )


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def button(browser: WebDriver, text: str) -> WebElement:
    """The clickable submit button whose visible text is ``text``."""
    xpath = f"//button[normalize-space()={text!r}] | //input[@type='submit' and @value={text!r}]"
    return until(browser, ec.element_to_be_clickable((By.XPATH, xpath)), f"a {text!r} button")


def sign_in_at_provider(browser: WebDriver, issuer: str, login: str) -> None:
    """Fill the provider's login form as ``login``, then grant consent."""
    field = until(
        browser,
        ec.visibility_of_element_located((By.NAME, "login")),
        "the provider's login form",
    )
    assert origin(browser.current_url) == origin(issuer), browser.current_url
    assert urlsplit(browser.current_url).path.startswith("/interaction/")
    field.send_keys(login)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    button(browser, "Sign-in").click()

    # The consent page replaces the login form.
    until(
        browser,
        ec.presence_of_element_located((By.CSS_SELECTOR, "input[name='prompt'][value='consent']")),
        "the provider's consent page",
    )
    assert origin(browser.current_url) == origin(issuer), browser.current_url
    button(browser, "Continue").click()


def confirm_sign_out_at_provider(browser: WebDriver, issuer: str) -> None:
    """Answer the provider's "Do you want to sign-out?" page with "Yes"."""
    yes = until(
        browser,
        ec.element_to_be_clickable(
            (By.CSS_SELECTOR, "button[form='op.logoutForm'][name='logout'][value='yes']")
        ),
        "the provider's sign-out confirmation",
    )
    assert origin(browser.current_url) == origin(issuer), browser.current_url
    assert yes.text.startswith("Yes")
    yes.click()


# -- tests -------------------------------------------------------------------


def test_sign_in_and_out_through_the_provider(sso_live, live_server, browser):
    """Dashboard → provider login and consent → dashboard → sign out at both → home."""
    site = live_server.url

    browser.get(f"{site}/dashboard/")
    # /dashboard/ → /sso/login/?next=/dashboard/ → the provider's login page
    sign_in_at_provider(browser, sso_live.issuer, "zoe")
    wait_for_page(browser, f"{site}/dashboard/", "dashboard: zoe")
    assert browser.get_cookie("sessionid") is not None

    browser.get(f"{site}/sso/logout/")
    button(browser, "Sign out").click()
    confirm_sign_out_at_provider(browser, sso_live.issuer)
    wait_for_page(browser, f"{site}/", "home: anonymous")
    assert body_text(browser) == "home: anonymous"

    # Both sessions are over: the dashboard asks for a provider login again.
    browser.get(f"{site}/dashboard/")
    until(browser, ec.visibility_of_element_located((By.NAME, "login")), "the login form")
    assert origin(browser.current_url) == origin(sso_live.issuer)


def test_admin_sign_in_with_sso_and_log_out(sso_live, live_server, browser):
    """The admin login offers SSO; a provider admin reaches the admin, logs out of both."""
    site = live_server.url
    sso_live.set_account("root", {"groups": ["admins"]})

    browser.get(f"{site}/admin/login/")
    link = until(
        browser,
        ec.element_to_be_clickable((By.LINK_TEXT, "Sign in with SSO")),
        'the admin login page\'s "Sign in with SSO" link',
    )
    # The password form is still offered beside it.
    assert browser.find_element(By.ID, "login-form").is_displayed()
    assert browser.find_element(By.NAME, "username").is_displayed()
    assert urlsplit(link.get_attribute("href")).path == "/sso/login/"
    link.click()

    sign_in_at_provider(browser, sso_live.issuer, "root")
    until(browser, ec.url_to_be(f"{site}/admin/"), "the admin index")
    wait_for_admin_index(browser)
    assert "Site administration" in browser.title

    # Typing the logout address (a GET) neither crashes nor signs out: only the POST does.
    browser.get(f"{site}/admin/logout/")
    assert "Server Error" not in body_text(browser)
    browser.get(f"{site}/admin/")
    wait_for_admin_index(browser)

    # The admin's "Log out" button (a POST form) also ends the provider's session.
    button(browser, "Log out").click()
    confirm_sign_out_at_provider(browser, sso_live.issuer)
    wait_for_page(browser, f"{site}/", "home: anonymous")

    browser.get(f"{site}/admin/")
    until(browser, ec.url_contains("/admin/login/"), "the admin login page")
    assert browser.find_element(By.LINK_TEXT, "Sign in with SSO").is_displayed()
