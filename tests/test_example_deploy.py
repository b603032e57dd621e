"""The example's production mode passes ``manage.py check --deploy`` with nothing to report.

Each control that the environment can switch off is switched off once, and the check that
guards it must speak. (Controls only a settings change can switch off are covered by calling
the check functions directly, in tests/secure_sso/test_checks.py.)
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from audit.anchors import new_private_pem

ROOT = Path(__file__).resolve().parents[1]
MANAGE = ROOT / "example" / "manage.py"


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """A production environment for the example: nothing inherited that could weaken it."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("OIDC_", "AUTH0_", "DJANGO_", "SECURE_SSO", "DATABASE_URL"))
    }
    env.update(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        AUDIT_SIGNING_KEY=secrets.token_urlsafe(32),
        OIDC_ISSUER="https://idp.example.com/",
        OIDC_CLIENT_ID="example-client",
        OIDC_CLIENT_SECRET=secrets.token_urlsafe(32),
        DJANGO_ALLOWED_HOSTS="www.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        AUDIT_ANCHOR_KEY=new_private_pem(),
        AUDIT_ANCHOR_FILE=str(tmp_path / "audit-anchors.jsonl"),
    )
    env.update(overrides)
    return env


def deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE), "check", "--deploy", "--fail-level", "WARNING"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )


def test_production_mode_passes_check_deploy(tmp_path: Path) -> None:
    """No warning or error, ours or Django's."""
    result = deploy_check(production_env(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output
    assert "ERRORS" not in output
    assert "no issues" in output


@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({"SECURE_SSO_DEVELOPMENT": "1"}, ["secure_sso.E010"], id="development-mode"),
    pytest.param({"DJANGO_DEBUG": "1"},
                 # DEBUG also drops Django's https settings, and turns development mode on
                 # while www.example.com is allowed.
                 ["security.W018", "security.W008", "security.W004", "security.W012",
                  "security.W016", "secure_sso.E010", "secure_sso.E018"], id="debug"),
    pytest.param({"DJANGO_DEBUG": "1", "SECURE_SSO_DEVELOPMENT": "0"},
                 ["security.W018"], id="debug-without-development-mode"),
    pytest.param({"DJANGO_SECRET_KEY": "short"}, ["security.W009"], id="weak-secret-key"),
    pytest.param({"OIDC_ISSUER": "http://idp.example.com/"}, ["secure_sso.E002"],
                 id="http-issuer"),
    pytest.param({"OIDC_CLIENT_SECRET": ""}, ["secure_sso.E004"], id="no-client-secret"),
])
def test_switching_a_control_off_is_reported(
    tmp_path: Path, overrides: dict[str, str], expected: list[str]
) -> None:
    """Each weakened control is reported under its id, and the check fails."""
    result = deploy_check(production_env(tmp_path, **overrides))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for check_id in expected:
        assert f"({check_id})" in output, output
    if "secure_sso.E018" not in expected:
        assert "secure_sso.E018" not in output


def test_without_a_secret_key_the_site_refuses_to_start(tmp_path: Path) -> None:
    """No DJANGO_SECRET_KEY (and no DJANGO_DEBUG=1): manage.py stops on example.E001 and the
    WSGI application refuses to load, instead of serving with an empty key."""
    env = production_env(tmp_path)
    del env["DJANGO_SECRET_KEY"]
    result = deploy_check(env)
    assert result.returncode != 0
    assert "example.E001" in result.stdout + result.stderr
    wsgi = subprocess.run(
        [sys.executable, "-c", "import example.wsgi"], env=env, cwd=ROOT / "example",
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert wsgi.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in wsgi.stderr


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=env, cwd=ROOT / "example",
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_a_reviewer_verifies_with_only_the_database_and_the_audit_key(tmp_path: Path) -> None:
    """README's reviewer: DATABASE_URL, AUDIT_SIGNING_KEY, the anchor file and the anchors'
    public key; nothing of the provider's, no DJANGO_SECRET_KEY, no anchor private key. The
    site recorded events and published an anchor; the reviewer verifies both in example/."""
    site = production_env(tmp_path)
    assert manage(site, "migrate", "--no-input", "-v0").returncode == 0
    recorded = manage(site, "shell", "-c", "import audit; [audit.record('app.thing', n=n) "
                      "for n in range(3)]")
    assert recorded.returncode == 0, recorded.stderr
    published = manage(site, "audit_anchor")
    assert "anchor #1: events 1..3" in published.stdout, published.stdout + published.stderr
    public_key = manage(site, "audit_anchor", "--public-key").stdout
    reviewer = {
        k: v for k, v in site.items()
        if not k.startswith(("OIDC_", "AUTH0_", "DJANGO_", "SECURE_SSO", "AUDIT_ANCHOR_KEY"))
    }
    reviewer["AUDIT_ANCHOR_PUBLIC_KEYS"] = public_key
    assert set(reviewer) >= {"DATABASE_URL", "AUDIT_SIGNING_KEY", "AUDIT_ANCHOR_FILE"}
    verified = manage(reviewer, "audit_verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verified: 3 events; 1 of 1 anchors matched" in verified.stdout
    exported = manage(reviewer, "audit_export", "--output", str(tmp_path / "audit.jsonl"))
    assert exported.returncode == 0, exported.stderr
    (tmp_path / "anchor-key.pub").write_text(public_key)
    offline = manage({k: v for k, v in reviewer.items() if k != "AUDIT_SIGNING_KEY"},
                     "audit_verify", "--export", str(tmp_path / "audit.jsonl"),
                     "--anchors", reviewer["AUDIT_ANCHOR_FILE"],
                     "--public-key", str(tmp_path / "anchor-key.pub"))
    assert "export verified: 1 of 1 anchors matched" in offline.stdout, offline.stderr
