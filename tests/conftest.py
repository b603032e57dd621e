"""Shared fixtures: the real development provider, wired to pytest-django's live server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from secure_sso import client as sso_client
from tests.forge import ForgedProvider

# CI runs the same examples every time (a red CI is reproducible); local runs explore.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", deadline=None, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

E2E_CLIENT_ID = "secure-sso-tests"
E2E_CLIENT_SECRET = "e2e-secret-for-tests-only"  # noqa: S105


@pytest.fixture
def client() -> Any:
    """The Django test client as a loopback browser, which development mode lets use http.

    Tests of https enforcement build their own clients for other hosts.
    """
    from django.test import Client

    return Client(SERVER_NAME="localhost")


@pytest.fixture(autouse=True)
def _fresh_provider_cache() -> Iterator[None]:
    """Each test discovers the provider anew; metadata caching is tested on purpose."""
    sso_client.reset_provider_cache()
    yield
    sso_client.reset_provider_cache()


# --- The forged provider (tests/forge.py) ---------------------------------------------
# ``configure`` points ``SECURE_SSO`` at the forge; a module adds its own module-wide
# settings by overriding ``sso_settings_extra``, and a test overrides single settings by
# calling the fixture's value again with keywords.


@pytest.fixture(scope="module")
def forge_server() -> Iterator[ForgedProvider]:
    """One forge per module: stopping a server costs half a second, so it is reused."""
    with ForgedProvider() as provider:
        yield provider


@pytest.fixture
def forge(forge_server: ForgedProvider) -> ForgedProvider:
    """The module's forge with every answer back to its default for this test."""
    return forge_server.reset()


@pytest.fixture
def sso_settings_extra() -> dict[str, Any]:
    """Settings a module adds to every ``configure`` (override in the module)."""
    return {}


@pytest.fixture
def configure(
    settings: Any, forge: ForgedProvider, sso_settings_extra: dict[str, Any]
) -> Callable[..., None]:
    """Point ``SECURE_SSO`` at the forge (applied now); keyword arguments override single
    settings, on top of the module's ``sso_settings_extra``."""

    def apply(**overrides: Any) -> None:
        settings.SECURE_SSO = {
            "ISSUER": forge.issuer,
            "CLIENT_ID": forge.client_id,
            "CLIENT_SECRET": forge.client_secret,
            "DEVELOPMENT_MODE": True,
            "HTTP_TIMEOUT": 2,
            **sso_settings_extra,
            **overrides,
        }

    apply()
    return apply


@pytest.fixture(scope="session")
def devidp(live_server: Any) -> Iterator[Any]:
    """The npm ``oidc-provider`` on loopback with a confidential client for ``live_server``.

    Never skips: if Node or the npm package is missing the test fails, as CI must.
    """
    from tests.idp import DevIdP, ensure_devidp_installed

    ensure_devidp_installed()
    base = live_server.url
    clients = [
        {
            "client_id": E2E_CLIENT_ID,
            "client_secret": E2E_CLIENT_SECRET,
            "redirect_uris": [f"{base}/sso/callback/"],
            "post_logout_redirect_uris": [f"{base}/sso/logout/complete/"],
            "backchannel_logout_uri": f"{base}/sso/backchannel-logout/",
            "backchannel_logout_session_required": True,
        }
    ]
    # The provider's back-channel calls go to the live server on loopback, which
    # oidc-provider's SSRF guard refuses unless told otherwise (tests only).
    with DevIdP(clients, extra_env={"DEVIDP_ALLOW_LOOPBACK_CALLS": "1"}) as idp:
        yield idp


@pytest.fixture
def sso_live(settings: Any, devidp: Any, live_server: Any) -> Any:
    """Point ``SECURE_SSO`` at the development provider for one test."""
    settings.SECURE_SSO = {
        "ISSUER": devidp.issuer,
        "CLIENT_ID": E2E_CLIENT_ID,
        "CLIENT_SECRET": E2E_CLIENT_SECRET,
        "SCOPES": ["openid", "email", "profile", "groups"],
        "GROUPS_CLAIM": "groups",
        "GROUP_MAP": {"admins": "Administrators", "staff": "Staff"},
        "STAFF_GROUPS": ["admins"],
        "DEVELOPMENT_MODE": True,
    }
    return devidp


# --- End-to-end tests never skip -------------------------------------------------
_skipped_e2e: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "e2e" in report.keywords:
        _skipped_e2e.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped end-to-end test fails the run: a missing dependency must be seen."""
    if _skipped_e2e:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped_e2e:
        terminalreporter.write_line(
            "FAILED: end-to-end tests were skipped: " + ", ".join(_skipped_e2e), red=True
        )
