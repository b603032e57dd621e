"""The example site and the development provider, both over TLS on loopback, as deployed.

:func:`serve_example_over_https` starts, for the duration of a ``with`` block:

* the development provider (``example/devidp``, npm ``oidc-provider``) on
  ``https://127.0.0.1:<port>``, with the test certificate (``DEVIDP_TLS_CERT``/``KEY``);
* the example project under **gunicorn** on ``https://localhost:<port>`` with its
  production settings: no ``DJANGO_DEBUG``, no ``SECURE_SSO_DEVELOPMENT``, secrets from
  the environment, a temporary SQLite database migrated first and ``check --deploy``
  clean (:mod:`tests.e2e.journey.prepare_site`).

The site and the provider are on different hosts (``localhost`` and ``127.0.0.1``), so
the browser keeps their cookies apart, as it would for two real domains. Django's own
calls to the provider trust the test CA through ``REQUESTS_CA_BUNDLE``.

Nothing skips: a missing ``node``, npm package or failing server raises ``RuntimeError``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from audit.anchors import new_private_pem
from tests.e2e.journey.certs import LoopbackPKI, make_loopback_pki
from tests.idp import DevIdP, ensure_devidp_installed

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_DIR = REPO_ROOT / "example"
SITE_HOST = "localhost"
CLIENT_ID = "example-journey"
START_TIMEOUT = 90.0
#: Environment the example reads; cleared so the caller's shell cannot leak in.
_EXAMPLE_ENV_PREFIXES = ("OIDC_", "AUTH0_", "DJANGO_", "SECURE_SSO", "EXAMPLE_", "AUDIT_")


@dataclass
class HttpsSite:
    """Where the running site and provider are, and their logs."""

    url: str
    provider: DevIdP
    pki: LoopbackPKI
    database: Path
    server_log: Path

    @property
    def provider_url(self) -> str:
        return self.provider.issuer

    def logs(self) -> str:
        """gunicorn's and the provider's output so far."""
        server = self.server_log.read_text(errors="replace") if self.server_log.exists() else ""
        return f"--- gunicorn ---\n{server}\n--- provider ---\n{self.provider.stderr}\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def example_environment(
    *, issuer: str, client_secret: str, database: Path, ca_bundle: Path, step_up_max_age: int
) -> dict[str, str]:
    """The production configuration of the example, from environment variables only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_EXAMPLE_ENV_PREFIXES)}
    env.update(
        DJANGO_SETTINGS_MODULE="example.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        AUDIT_SIGNING_KEY=secrets.token_urlsafe(32),
        DATABASE_URL=f"sqlite:///{database}",  # absolute path: sqlite:////tmp/...
        # The audit trail's anchors: a key of this run, a file beside its database.
        AUDIT_ANCHOR_KEY=new_private_pem(),
        AUDIT_ANCHOR_FILE=str(database.with_name("audit-anchors.jsonl")),
        OIDC_ISSUER=issuer,
        OIDC_CLIENT_ID=CLIENT_ID,
        OIDC_CLIENT_SECRET=client_secret,
        OIDC_GROUPS_SCOPE="1",
        # Test-size step-up window; the production default is 300 s.
        EXAMPLE_STEP_UP_MAX_AGE=str(step_up_max_age),
        # Django's back-channel calls (discovery, JWKS, token, userinfo) trust the test CA.
        REQUESTS_CA_BUNDLE=str(ca_bundle),
        # The example package first (``import example``), then the repository (``tests``).
        PYTHONPATH=os.pathsep.join([str(EXAMPLE_DIR), str(REPO_ROOT)]),
        PYTHONUNBUFFERED="1",
    )
    # Loopback never through a proxy a CI machine may configure.
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY", ""), "localhost,127.0.0.1"]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    return env


def _without_control_socket() -> list[str]:
    """Recent gunicorn opens a control socket at one fixed path per user; parallel runs
    would share it, so it is turned off where the option exists."""
    from gunicorn.config import KNOWN_SETTINGS

    names = {setting.name for setting in KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], ca: Path, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment for loopback
    while True:
        try:
            if session.get(url, timeout=5, verify=str(ca)).status_code == 200:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"gunicorn did not serve {url} (exit {proc.poll()}):\n"
                f"{log.read_text(errors='replace')[-6000:]}"
            )
        time.sleep(0.25)


@contextlib.contextmanager
def serve_example_over_https(
    workdir: Path,
    *,
    accounts: dict[str, dict[str, Any]],
    step_up_max_age: int,
) -> Iterator[HttpsSite]:
    """Run the provider and the example under gunicorn over TLS; stop both on exit.

    Args:
        workdir: an empty private directory for the certificates, database and logs.
        accounts: the provider's claim overrides per login name (see :class:`DevIdP`).
        step_up_max_age: the example's ``EXAMPLE_STEP_UP_MAX_AGE``, in seconds.

    Raises:
        RuntimeError: node/npm, the provider, ``migrate``/``check --deploy`` or gunicorn
            failed.
    """
    ensure_devidp_installed()
    pki = make_loopback_pki(workdir)
    port = free_port()
    url = f"https://{SITE_HOST}:{port}"
    client_secret = secrets.token_urlsafe(32)
    clients = [
        {
            "client_id": CLIENT_ID,
            "client_secret": client_secret,
            "redirect_uris": [f"{url}/sso/callback/"],
            "post_logout_redirect_uris": [f"{url}/sso/logout/complete/"],
            # As example/run.sh: signing out at the provider calls the site back.
            "backchannel_logout_uri": f"{url}/sso/backchannel-logout/",
            "backchannel_logout_session_required": True,
        }
    ]
    provider_env = {
        "DEVIDP_TLS_CERT": str(pki.server_cert),
        "DEVIDP_TLS_KEY": str(pki.server_key),
        # The back-channel call goes to the site on loopback, over https with the test CA.
        "DEVIDP_ALLOW_LOOPBACK_CALLS": "1",
        "NODE_EXTRA_CA_CERTS": str(pki.ca_cert),
    }
    with DevIdP(clients, accounts, extra_env=provider_env) as provider:
        if not provider.issuer.startswith("https://"):
            raise RuntimeError(f"the provider did not start with TLS: {provider.issuer}")
        database = workdir / "example.sqlite3"
        env = example_environment(
            issuer=provider.issuer,
            client_secret=client_secret,
            database=database,
            ca_bundle=pki.ca_cert,
            step_up_max_age=step_up_max_age,
        )
        prepared = subprocess.run(
            [sys.executable, "-m", "tests.e2e.journey.prepare_site"],
            cwd=EXAMPLE_DIR, env=env, capture_output=True, text=True, timeout=180, check=False,
        )
        if prepared.returncode != 0:
            raise RuntimeError(
                "migrate / check --deploy of the example failed:\n"
                f"{prepared.stdout}\n{prepared.stderr}"
            )
        log = workdir / "gunicorn.log"
        command = [
            sys.executable, "-m", "gunicorn", "tests.e2e.journey.wsgi:application",
            "--bind", f"127.0.0.1:{port}",
            "--certfile", str(pki.server_cert),
            "--keyfile", str(pki.server_key),
            # One process, threads for the browser's parallel requests (static files).
            "--workers", "1", "--worker-class", "gthread", "--threads", "8",
            "--timeout", "120", "--graceful-timeout", "5",
            "--access-logfile", "-", "--error-logfile", "-",
            *_without_control_socket(),
        ]
        with log.open("wb") as out:
            server = subprocess.Popen(
                command, cwd=EXAMPLE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_until_up(f"{url}/", server, pki.ca_cert, log)
            yield HttpsSite(
                url=url, provider=provider, pki=pki, database=database, server_log=log
            )
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=5)


__all__ = ["HttpsSite", "free_port", "serve_example_over_https"]
