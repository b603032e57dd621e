"""README's run command, literally: ``make run`` in a fresh copy of the checkout.

Nothing is prepared that a newcomer would not have: the copy holds only the repository's
files (no ``.venv``, no ``node_modules``, no database), ``make run`` is started from its
root with no variables (the environment loses every variable of make, the package and the
example, so an outer ``make test VENV=...`` cannot leak in), and the ports are the defaults
(when 8000 or 9000 is taken, run.sh says so and uses the next free one, which is read from
its output). The test then does what README's walk-through says, over real HTTP: sign in at
the development provider (login form, consent page), the dashboard, the TOTP step-up, the
admin and its audit events for ``admin``, sign-out with the provider's confirmation, the
reviewer's ``audit_verify``; and stops everything it started, like Ctrl-C.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from base64 import b32decode
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django_otp.oath import TOTP

from tests.idp import end_session_via_devidp, login_via_devidp
from tests.run_sh import is_free

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
#: README's command for a reviewer, typed in the copy's example/ folder.
REVIEWER_COMMAND = "DJANGO_DEBUG=1 ../.venv/bin/python manage.py audit_verify"
#: Creating the virtual environment and installing the provider is part of ``make run``.
START_TIMEOUT = 900
#: Variables of make, of the package and of the example: none of them is set by a newcomer.
NOT_INHERITED = (
    "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "VENV", "PYTHON", "DJANGO",
    "PYTEST_ARGS", "VIRTUAL_ENV", "PYTHONPATH", "EXAMPLE_", "DEVIDP_", "OIDC_", "AUTH0_",
    "DJANGO_", "SECURE_SSO", "DATABASE_URL", "AUDIT_", "SSO_TOKEN_KEY",
    "PYTEST_", "COV_",
)


def newcomer_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(NOT_INHERITED)}


def fresh_copy(destination: Path) -> Path:
    """The checkout's files as a clone has them (tracked and new, nothing git ignores)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@dataclass
class Run:
    """``make run`` as a person started it, and what it printed."""

    clone: Path
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def url_after(self, label: str) -> str | None:
        match = re.search(rf"{label}: (http://127\.0\.0\.1:\d+)/", self.output)
        return match.group(1) if match else None


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    clone = fresh_copy(tmp_path_factory.mktemp("fresh-clone"))
    proc = subprocess.Popen(
        ["make", "run"], cwd=clone, env=newcomer_environment(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        # A terminal's Ctrl-C: a runner started in the background may pass SIGINT on ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    run = Run(clone, proc)
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: run.lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            site = run.url_after("Example site")
            if site:
                try:
                    requests.get(site + "/", timeout=2)
                    break
                except requests.ConnectionError:
                    pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`make run` did not serve the example:\n{run.output}")
            time.sleep(0.3)
        yield run
    finally:
        # Ctrl-C in the terminal: SIGINT to make and everything it started.
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                pytest.fail("`make run` did not stop on Ctrl-C")
        for label in ("Example site", "Development provider ready"):
            url = run.url_after(label)
            if url and not is_free(urlsplit(url).port or 0):
                pytest.fail(f"{url} still answers after Ctrl-C: `make run` left a server behind")


@pytest.fixture(scope="module")
def site(make_run: Run) -> str:
    url = make_run.url_after("Example site")
    assert url
    return url


@pytest.fixture(scope="module")
def provider(make_run: Run) -> str:
    url = make_run.url_after("Development provider ready")
    assert url, make_run.output
    return url


def sign_in(site: str, login: str, pages: list[requests.Response] | None = None
            ) -> requests.Session:
    """README: click Sign in, type a login name and any password, then the consent page."""
    session = requests.Session()
    start = session.get(site + "/dashboard/", allow_redirects=False)
    assert start.headers["Location"].startswith("/sso/login/?next=/dashboard/")
    authorize = session.get(site + start.headers["Location"], allow_redirects=False)
    back = login_via_devidp(
        session, authorize.headers["Location"], login,
        on_page=None if pages is None else pages.append,
    )
    dashboard = session.get(back.headers["Location"])
    assert dashboard.url == site + "/dashboard/"
    assert f'<strong id="dashboard-user">{login}</strong>' in dashboard.text
    return session


def sign_out(site: str, session: requests.Session) -> requests.Response:
    out = session.post(
        site + "/sso/logout/",
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": site + "/dashboard/"},
        allow_redirects=False,
    )
    back_home = end_session_via_devidp(session, out.headers["Location"])
    return session.get(back_home.headers["Location"])


def test_make_run_starts_cleanly(make_run: Run, site: str, provider: str) -> None:
    """The servers README names, with no "unsupported runtime" warning and no traceback."""
    assert urlsplit(site).port and urlsplit(provider).port
    if urlsplit(site).port != 8000:
        assert "Port 8000 is in use" in make_run.output
    # What README says it prints, with the ports it printed.
    banner = re.search(r"```text\n(.*?)```", README, re.S)
    assert banner
    for line in banner.group(1).splitlines():
        line = line.replace(":8000/", f":{urlsplit(site).port}/")
        line = line.replace(":9000/", f":{urlsplit(provider).port}/")
        assert line in make_run.output.splitlines()
    assert "Unsupported runtime" not in make_run.output
    assert "Traceback" not in make_run.output
    assert (make_run.clone / ".venv" / "bin" / "python").exists()  # made by make run itself


def test_sign_in_and_out_as_readme_walks_through(site: str) -> None:
    """Sign in (provider's login form, then its consent page) lands on /dashboard/; Sign out
    asks the provider to confirm and comes home signed out."""
    pages: list[requests.Response] = []
    session = sign_in(site, "newcomer", pages)
    assert any('name="login"' in p.text and 'name="password"' in p.text for p in pages)
    assert any('value="consent"' in p.text and "Continue" in p.text for p in pages)
    dashboard = session.get(site + "/dashboard/")
    nonce = re.search(r'<style nonce="([^"]+)"', dashboard.text)
    assert nonce and f"'nonce-{nonce.group(1)}'" in dashboard.headers["Content-Security-Policy"]

    page = sign_out(site, session)
    assert page.url == site + "/"
    assert "You are not signed in." in page.text


def test_admin_is_a_reviewer(site: str) -> None:
    """README: ``admin`` is staff through the provider's ``admins`` group and reads the audit
    events and SSO sessions in the admin, with the permissions the example itself grants."""
    session = sign_in(site, "admin")
    index = session.get(site + "/admin/")
    assert index.status_code == 200
    assert "have permission to view or edit anything" not in index.text
    assert "/admin/secure_sso_audit/auditevent/" in index.text
    assert "/admin/secure_sso/ssosession/" in index.text
    events = session.get(site + "/admin/secure_sso_audit/auditevent/")
    assert events.status_code == 200
    assert "auth.login.success" in events.text
    sessions = session.get(site + "/admin/secure_sso/ssosession/")
    assert sessions.status_code == 200
    assert "End the selected sessions" in sessions.text


def test_signing_out_at_the_provider_ends_the_example_session(site: str, provider: str) -> None:
    """README: signing out on the provider's own page (/session/end, "Yes, sign me out")
    ends the example's session too, through back-channel logout."""
    session = sign_in(site, "paula")
    end_session_via_devidp(session, provider + "/session/end")
    page = session.get(site + "/")
    assert "You are not signed in." in page.text


def test_sensitive_page_asks_for_totp(site: str) -> None:
    """README: Account security asks for a TOTP step-up: enrol from the shown key, enter a
    code, the page opens. The enrolment page has a way back."""
    session = sign_in(site, "sam")
    page = session.get(site + "/account/security/")
    assert urlsplit(page.url).path == "/sso/mfa/enroll/"  # no device yet: enroll first
    assert '<a id="step-up-cancel" href="/dashboard/">' in page.text
    secret = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', page.text).group(1)
    app = TOTP(b32decode(secret.replace(" ", "")))  # what an authenticator app computes
    enrolled = session.post(
        page.url,
        data={"code": f"{app.token():06d}", "csrfmiddlewaretoken": session.cookies["csrftoken"],
              "next": "/account/security/"},
        headers={"Referer": page.url},
    )
    assert 'id="recovery-codes"' in enrolled.text
    opened = session.get(site + "/account/security/")
    assert urlsplit(opened.url).path == "/account/security/"
    assert 'id="step-up-ok"' in opened.text


def test_both_servers_answer_favicon(site: str, provider: str) -> None:
    """Browsers ask every origin for /favicon.ico: no 404 in either server's log."""
    for origin in (site, provider):
        icon = requests.get(origin + "/favicon.ico", timeout=5)
        assert icon.status_code == 200
        assert icon.headers["Content-Type"].startswith("image/")


def test_reviewer_verifies_the_trail(make_run: Run, site: str) -> None:
    """README's reviewer command, in the copy's example/ folder, against the database that
    ``make run`` made: no provider settings needed."""
    sign_out(site, sign_in(site, "rita"))
    assert f"cd example && {REVIEWER_COMMAND}" in README
    result = subprocess.run(  # noqa: S602  README prints this line for a shell: run it as one
        REVIEWER_COMMAND, shell=True,
        cwd=make_run.clone / "example", env=newcomer_environment(),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"verified: \d+ events", result.stdout), result.stdout
