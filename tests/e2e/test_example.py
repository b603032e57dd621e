"""README's run command: the example site with the local provider, driven over real HTTP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from base64 import b32decode
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django_otp.oath import TOTP

from tests.idp import end_session_via_devidp, ensure_devidp_installed, login_via_devidp

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
#: The example's step-up window in this test, short enough to watch it close.
STEP_UP_WINDOW = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``example/run.sh`` exactly as README's run command starts it, on free ports."""
    ensure_devidp_installed()
    port, idp_port = free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("OIDC_", "AUTH0_", "DJANGO_", "SECURE_SSO"))
    }
    env.update(
        VENV=sys.prefix,
        EXAMPLE_PORT=str(port),
        DEVIDP_PORT=str(idp_port),
        DATABASE_URL=f"sqlite:///{tmp_path_factory.mktemp('example') / 'db.sqlite3'}",
        EXAMPLE_STEP_UP_MAX_AGE=str(STEP_UP_WINDOW),
    )
    log = tmp_path_factory.mktemp("example-log") / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", str(ROOT / "example" / "run.sh")],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + "/", timeout=1)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"example site did not start:\n{log.read_text()}")
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_sign_in_and_out_of_the_example(example_site: str) -> None:
    """Signing in through the local provider lands on /dashboard/; signing out goes home."""
    session = requests.Session()
    home = session.get(example_site + "/")
    assert "You are not signed in." in home.text
    start = session.get(example_site + "/dashboard/", allow_redirects=False)
    assert start.headers["Location"].startswith("/sso/login/?next=/dashboard/")
    authorize = session.get(example_site + start.headers["Location"], allow_redirects=False)
    back = login_via_devidp(session, authorize.headers["Location"], "admin")
    dashboard = session.get(back.headers["Location"])
    assert dashboard.url == example_site + "/dashboard/"
    assert '<strong id="dashboard-user">admin</strong>' in dashboard.text
    assert "Administrators" in dashboard.text
    nonce = re.search(r'<style nonce="([^"]+)"', dashboard.text)
    assert nonce and f"'nonce-{nonce.group(1)}'" in dashboard.headers["Content-Security-Policy"]

    out = session.post(
        example_site + "/sso/logout/",
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": example_site + "/dashboard/"},
        allow_redirects=False,
    )
    back_home = end_session_via_devidp(session, out.headers["Location"])
    page = session.get(back_home.headers["Location"])
    assert page.url == example_site + "/"
    assert "You are not signed in." in page.text


def test_signing_out_at_the_provider_ends_the_example_session(example_site: str) -> None:
    """README: signing out on the provider's own page ends the example's session too
    (back-channel logout from the provider to the example, both on loopback)."""
    session = requests.Session()
    start = session.get(example_site + "/sso/login/?next=/dashboard/", allow_redirects=False)
    back = login_via_devidp(session, start.headers["Location"], "paula")
    assert "paula" in session.get(back.headers["Location"]).text
    issuer = "http://" + urlsplit(start.headers["Location"]).netloc
    end_session_via_devidp(session, issuer + "/session/end?client_id=example-local")
    page = session.get(example_site + "/")
    assert "You are not signed in." in page.text


def test_sensitive_page_asks_for_totp(example_site: str) -> None:
    """/account/security/ asks for enrollment, opens after a code from the shown secret,
    and asks again once the step-up window has passed."""
    session = requests.Session()
    start = session.get(example_site + "/sso/login/?next=/dashboard/", allow_redirects=False)
    back = login_via_devidp(session, start.headers["Location"], "sam")
    session.get(back.headers["Location"])

    page = session.get(example_site + "/account/security/")
    assert urlsplit(page.url).path == "/sso/mfa/enroll/"  # no device yet: enroll first
    secret = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', page.text).group(1)
    assert "<svg" in page.text and "<script" not in page.text
    app = TOTP(b32decode(secret.replace(" ", "")))  # what an authenticator app computes
    enrolled = session.post(
        page.url,
        data={"code": f"{app.token():06d}", "csrfmiddlewaretoken": session.cookies["csrftoken"],
              "next": "/account/security/"},
        headers={"Referer": page.url},
    )
    assert 'id="recovery-codes"' in enrolled.text
    opened = session.get(example_site + "/account/security/")
    assert urlsplit(opened.url).path == "/account/security/"
    assert 'id="step-up-ok"' in opened.text

    time.sleep(STEP_UP_WINDOW + 1)  # the window closes: the same page asks again
    again = session.get(example_site + "/account/security/")
    assert urlsplit(again.url).path == "/sso/step-up/"
    app = TOTP(b32decode(secret.replace(" ", "")), drift=1)  # the next step: no replay
    stepped = session.post(
        again.url,
        data={"code": f"{app.token():06d}", "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": again.url},
    )
    assert urlsplit(stepped.url).path == "/account/security/"
