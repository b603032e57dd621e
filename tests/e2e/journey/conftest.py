"""Fixtures of the browser journey: the site over https, Debian's Chromium, the artifacts folder.

None of them skips: a missing Chromium, node or npm package raises, and the journey fails.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.e2e.journey.chromium import launch_chromium
from tests.e2e.journey.https_site import REPO_ROOT, HttpsSite, serve_example_over_https

#: Screenshots and logs of the last run (git-ignored).
ARTIFACTS = REPO_ROOT / "test-artifacts" / "journey"
#: The example's step-up window for the journey: short enough to watch it close.
STEP_UP_WINDOW = 5
JOURNEY_USER = "alice"
REVIEWER = "rita"
#: The provider's claims: the reviewer is in the provider's "admins" group, which the
#: example maps to its "Administrators" group and to staff. The journey user has none.
ACCOUNTS = {REVIEWER: {"groups": ["admins"], "given_name": "Rita", "family_name": "Reviewer"}}


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """``test-artifacts/journey/``, emptied first."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def https_site(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[HttpsSite]:
    """The example under gunicorn and the provider, both over TLS (``https_site.py``)."""
    workdir = tmp_path_factory.mktemp("https-site")
    with serve_example_over_https(
        workdir, accounts=ACCOUNTS, step_up_max_age=STEP_UP_WINDOW
    ) as site:
        try:
            yield site
        finally:
            (artifacts / "servers.log").write_text(site.logs())


@pytest.fixture(scope="module")
def chromium(https_site: HttpsSite) -> Iterator[Browser]:
    """Headless Debian Chromium that accepts the test certificate's key and nothing else."""
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, trusted_spki=[https_site.pki.spki_sha256])
        try:
            yield browser
        finally:
            browser.close()
