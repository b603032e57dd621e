"""Smoke tests for the development OpenID provider (example/devidp) and tests/idp.py.

They need npm (which installs the provider and the pinned Node.js 22 it runs on)
but not Django; run them alone with
``python -m pytest tests/e2e/test_devidp.py -p no:django``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.idp import (
    DEVIDP_DIR,
    DEVIDP_NODE,
    SERVER_SCRIPT,
    DevIdP,
    end_session_via_devidp,
    login_via_devidp,
)

pytestmark = pytest.mark.e2e

CLIENT_ID = "example-rp"
CLIENT_SECRET = "example-rp-secret-for-tests-only"
REDIRECT_URI = "http://127.0.0.1:1/cb"
POST_LOGOUT_URI = "http://127.0.0.1:1/logged-out"


@pytest.fixture(scope="module")
def idp() -> Iterator[DevIdP]:
    clients = [
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [REDIRECT_URI],
            "post_logout_redirect_uris": [POST_LOGOUT_URI],
        }
    ]
    accounts = {"alice": {"email": "alice@corp.test", "groups": ["admins", "staff"]}}
    with DevIdP(clients, accounts) as provider:
        yield provider


@pytest.fixture(scope="module")
def metadata(idp: DevIdP) -> dict:
    return idp.metadata()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _authorize(
    metadata: dict,
    login: str,
    session: requests.Session | None = None,
    on_page=None,
    **overrides: str,
) -> dict:
    verifier, challenge = _pkce()
    params = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "scope": "openid email profile groups",
        "redirect_uri": REDIRECT_URI,
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    params = {k: v for k, v in params.items() if v is not None}
    session = session or requests.Session()
    url = f"{metadata['authorization_endpoint']}?{urlencode(params)}"
    response = login_via_devidp(session, url, login, on_page=on_page)
    location = response.headers["Location"]
    return {
        "session": session,
        "params": params,
        "verifier": verifier,
        "response": response,
        "location": location,
        "query": {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()},
    }


def _id_token_claims(metadata: dict, tokens: dict) -> dict:
    """The claims of the token response's ID token, its signature checked."""
    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    return jwt.decode(tokens["id_token"], keys, algorithms=["RS256"]).claims


def _exchange(metadata: dict, code: str, verifier: str) -> requests.Response:
    return requests.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )


def test_discovery_and_jwks(idp: DevIdP, metadata: dict) -> None:
    assert idp.issuer.startswith("http://127.0.0.1:")
    assert metadata["issuer"] == idp.issuer
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["end_session_endpoint"].startswith(idp.issuer)
    assert {"openid", "email", "profile", "groups"} <= set(metadata["scopes_supported"])
    assert "RS256" in metadata["id_token_signing_alg_values_supported"]

    jwks = requests.get(metadata["jwks_uri"], timeout=10).json()
    algs = {key.get("alg") for key in jwks["keys"]}
    assert "RS256" in algs
    for key in jwks["keys"]:
        assert key["kid"]
        assert "d" not in key  # public parts only


def test_authorization_code_flow_with_pkce(idp: DevIdP, metadata: dict) -> None:
    flow = _authorize(metadata, "alice")
    assert flow["response"].status_code in (302, 303)
    assert flow["location"].startswith(REDIRECT_URI + "?")
    query = flow["query"]
    assert "error" not in query, query
    assert query["code"]
    assert query["state"] == flow["params"]["state"]
    assert query["iss"] == idp.issuer

    token_response = _exchange(metadata, query["code"], flow["verifier"])
    assert token_response.status_code == 200, token_response.text
    tokens = token_response.json()
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["id_token"]

    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    claims = jwt.decode(tokens["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["iss"] == idp.issuer
    assert claims["aud"] == CLIENT_ID
    assert claims["sub"] == "alice"
    assert claims["nonce"] == flow["params"]["nonce"]

    userinfo = requests.get(
        metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    ).json()
    assert userinfo["sub"] == "alice"
    assert userinfo["email"] == "alice@corp.test"
    assert userinfo["email_verified"] is True
    assert userinfo["groups"] == ["admins", "staff"]
    assert userinfo["preferred_username"] == "alice"

    # The accounts file is re-read on every lookup.
    idp.set_account("alice", {"email": "alice@corp.test", "groups": ["staff"]})
    userinfo = requests.get(
        metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    ).json()
    assert userinfo["groups"] == ["staff"]

    # A code is single use (and replaying it revokes the tokens it produced).
    assert _exchange(metadata, query["code"], flow["verifier"]).status_code == 400
    replayed = requests.get(
        metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    )
    assert replayed.status_code == 401


def test_default_claims_for_unknown_login(metadata: dict) -> None:
    flow = _authorize(metadata, "bob.smith")
    tokens = _exchange(metadata, flow["query"]["code"], flow["verifier"]).json()
    userinfo = requests.get(
        metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    ).json()
    assert userinfo == {
        "sub": "bob.smith",
        "email": "bob.smith@example.test",
        "email_verified": True,
        "name": "Bob Smith",
        "given_name": "Bob",
        "family_name": "Smith",
        "preferred_username": "bob.smith",
        "groups": [],
    }


def test_pkce_is_required(metadata: dict) -> None:
    flow = _authorize(metadata, "alice", code_challenge=None, code_challenge_method=None)
    assert flow["query"]["error"] == "invalid_request"
    assert flow["query"]["state"] == flow["params"]["state"]


def test_rp_initiated_logout(idp: DevIdP, metadata: dict) -> None:
    flow = _authorize(metadata, "carol")
    tokens = _exchange(metadata, flow["query"]["code"], flow["verifier"]).json()
    session = flow["session"]

    state = secrets.token_urlsafe(8)
    url = (
        metadata["end_session_endpoint"]
        + "?"
        + urlencode(
            {
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": POST_LOGOUT_URI,
                "state": state,
            }
        )
    )
    response = end_session_via_devidp(session, url)
    assert response.status_code in (302, 303)
    location = response.headers["Location"]
    assert location.startswith(POST_LOGOUT_URI)
    assert parse_qs(urlsplit(location).query)["state"] == [state]

    # The provider session is gone: a new authorization asks for the login again
    # (login_via_devidp signs in as someone else, which only works if asked).
    again = _authorize(metadata, "dave", session=session)
    tokens = _exchange(metadata, again["query"]["code"], again["verifier"]).json()
    claims = _id_token_claims(metadata, tokens)
    assert claims["sub"] == "dave"


def test_startup_failure_is_reported() -> None:
    with pytest.raises(RuntimeError, match="client_secret"):
        with DevIdP([{"client_id": "no-secret", "redirect_uris": [REDIRECT_URI]}]):
            pass


# -- runtime -----------------------------------------------------------------

#: The Node.js below which server.mjs refuses to start (oidc-provider 9 needs 22 LTS+).
MINIMUM_NODE_MAJOR = 22
SYSTEM_NODE = "/usr/bin/node"


def _node_version(node: str | Path) -> str:
    result = subprocess.run(
        [str(node), "--version"], capture_output=True, text=True, timeout=30, check=True
    )
    return result.stdout.strip()


def _major(version: str) -> int:
    return int(version.lstrip("v").split(".")[0])


def test_provider_runs_on_the_pinned_node_22(idp: DevIdP, metadata: dict) -> None:
    """The tests start server.mjs with example/devidp's own Node.js 22, which oidc-provider
    accepts without its "Unsupported runtime" warning."""
    package = json.loads((DEVIDP_DIR / "package.json").read_text(encoding="utf-8"))
    pinned = package["dependencies"]["node"]
    assert re.fullmatch(r"22\.\d+\.\d+", pinned), f"node is not pinned to a 22.x: {pinned!r}"
    assert _node_version(DEVIDP_NODE) == f"v{pinned}"

    # The running provider is that binary (not the `node` on PATH).
    exe = Path(f"/proc/{idp.pid}/exe")
    if exe.exists():
        assert exe.resolve() == DEVIDP_NODE.resolve()

    assert metadata["issuer"] == idp.issuer  # it served requests; its notices are in
    assert "Unsupported runtime" not in idp.stderr, idp.stderr


def test_server_refuses_node_older_than_22() -> None:
    """On an old Node.js, server.mjs stops before importing oidc-provider: one stderr line
    naming the version and the pinned binary to use, exit status 1."""
    node = SYSTEM_NODE if os.access(SYSTEM_NODE, os.X_OK) else shutil.which("node")
    if node is None:
        pytest.skip("no system Node.js (/usr/bin/node or node on PATH) to try an old version with")
    version = _node_version(node)
    if _major(version) >= MINIMUM_NODE_MAJOR:
        pytest.skip(
            f"the system Node.js ({node}) is {version}, not older than {MINIMUM_NODE_MAJOR}: "
            "nothing old to refuse here (CI's Node.js 20 runs this test)"
        )
    env = {**os.environ, "DEVIDP_PORT": "0", "DEVIDP_CLIENTS": "[]", "NO_COLOR": "1"}
    result = subprocess.run(
        [node, str(SERVER_SCRIPT)],
        cwd=DEVIDP_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert version in lines[0]
    assert "example/devidp/node_modules/.bin/node" in lines[0]
    assert "Unsupported runtime" not in result.stderr


# -- pages: nothing from outside the provider --------------------------------

# url( in CSS, with or without quotes.
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]*)""", re.IGNORECASE)
# Absolute http(s) URLs anywhere in the page (attributes, text, CSS, debug output).
_ABSOLUTE_URL = re.compile(r"""https?://[^\s"'<>()]+""", re.IGNORECASE)
# Scheme-relative references (//host/...) in attributes.
_SCHEME_RELATIVE = re.compile(r"""(?:src|href|action)\s*=\s*['"]?(//[^\s"'<>]+)""", re.IGNORECASE)


def _foreign_references(html: str, page_url: str, allowed: list[str]) -> list[str]:
    """Every URL the page refers to that is outside ``allowed`` (URL prefixes)."""

    def within(url: str, prefix: str) -> bool:
        return url == prefix or any(url.startswith(prefix.rstrip("/") + c) for c in "/?#")

    def outside(url: str) -> bool:
        absolute = urljoin(page_url, url)
        return not any(within(absolute, prefix) for prefix in allowed)

    text = unescape(html)  # &#39;, &amp;, ... as a browser reads them
    found = [m.group(1) for m in _CSS_URL.finditer(text)]
    found += [m.group(0) for m in _ABSOLUTE_URL.finditer(text)]
    found += [m.group(1) for m in _SCHEME_RELATIVE.finditer(text)]
    return sorted({url for url in found if url and outside(url)})


def test_pages_load_nothing_from_outside_the_provider(idp: DevIdP, metadata: dict) -> None:
    """Login, consent, sign-out confirmation, signed-out and error pages refer to no URL
    but the provider's own and the client's registered ones (no web fonts: works offline)."""
    pages: list[requests.Response] = []
    session = requests.Session()

    flow = _authorize(metadata, "erin", session=session, on_page=pages.append)
    tokens = _exchange(metadata, flow["query"]["code"], flow["verifier"]).json()
    forms = [page.text for page in pages]
    assert any('name="password"' in text for text in forms), "no login page was seen"
    assert any('value="consent"' in text for text in forms), "no consent page was seen"

    # Without post_logout_redirect_uri the provider ends on its own signed-out page.
    end = f"{metadata['end_session_endpoint']}?{urlencode({'id_token_hint': tokens['id_token']})}"
    seen = len(pages)
    final = end_session_via_devidp(session, end, on_page=pages.append)
    assert final.status_code == 200
    assert urlsplit(final.url).path == "/session/end/success"
    logout_pages = pages[seen:]
    assert len(logout_pages) == 2, [page.url for page in logout_pages]
    confirmation, signed_out = logout_pages
    assert 'id="op.logoutForm"' in confirmation.text
    assert "signed out at the development provider" in signed_out.text

    # The signed-out page naming a client, and an error page (renderError).
    success = requests.get(f"{idp.url('/session/end/success')}?client_id={CLIENT_ID}", timeout=10)
    assert success.status_code == 200
    assert CLIENT_ID in success.text
    error = requests.get(idp.url("/auth"), timeout=10)
    assert error.status_code == 400
    pages += [success, error]

    allowed = [idp.issuer, REDIRECT_URI, POST_LOGOUT_URI]
    for page in pages:
        assert "html" in page.headers["Content-Type"], page.url
        foreign = _foreign_references(page.text, page.url, allowed)
        assert not foreign, f"{page.url} refers outside the provider: {foreign}"
        assert "fonts.googleapis.com" not in page.text, page.url


def test_logout_page_keeps_its_form_contract(idp: DevIdP, metadata: dict) -> None:
    """The sign-out confirmation page: oidc-provider's form (id op.logoutForm, hidden xsrf),
    "Yes, sign me out" (logout=yes) and "No, stay signed in", both submitting that form."""
    flow = _authorize(metadata, "frank")
    tokens = _exchange(metadata, flow["query"]["code"], flow["verifier"]).json()
    end = f"{metadata['end_session_endpoint']}?{urlencode({'id_token_hint': tokens['id_token']})}"
    page = flow["session"].get(end, timeout=10)
    assert page.status_code == 200
    html = page.text
    assert re.search(r'<html lang="en"', html)
    assert re.search(r"<title>[^<]+</title>", html)
    assert re.search(r'<link rel="icon" href="/favicon.ico"', html)
    form = re.search(r'<form id="op\.logoutForm" method="post" action="([^"]+)">(.*?)</form>', html)
    assert form, html
    assert urlsplit(urljoin(page.url, form.group(1))).path == "/session/end/confirm"
    assert re.search(r'<input type="hidden" name="xsrf" value="[^"]+"/?>', form.group(2))
    buttons = re.findall(r"<button ([^>]*)>([^<]*)</button>", html)
    assert len(buttons) == 2, buttons
    (yes_attrs, yes_text), (no_attrs, no_text) = buttons
    assert yes_text == "Yes, sign me out"
    for attr in ('type="submit"', 'form="op.logoutForm"', 'name="logout"', 'value="yes"'):
        assert attr in yes_attrs
    assert no_text == "No, stay signed in"
    assert 'type="submit"' in no_attrs and 'form="op.logoutForm"' in no_attrs
    assert "name=" not in no_attrs  # posts only xsrf: no logout field


def test_logout_page_no_keeps_the_provider_session(idp: DevIdP, metadata: dict) -> None:
    """ "No, stay signed in" ends only the client's authorization: the next authorization
    asks for consent again but not for a login, and is still for the same person."""
    flow = _authorize(metadata, "grace")
    tokens = _exchange(metadata, flow["query"]["code"], flow["verifier"]).json()
    session = flow["session"]
    state = secrets.token_urlsafe(8)
    end = f"{metadata['end_session_endpoint']}?" + urlencode(
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": POST_LOGOUT_URI,
            "state": state,
        }
    )
    response = end_session_via_devidp(session, end, stay_signed_in=True)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(POST_LOGOUT_URI)
    assert parse_qs(urlsplit(location).query)["state"] == [state]

    pages: list[requests.Response] = []
    again = _authorize(metadata, "someone-else", session=session, on_page=pages.append)
    assert not any('name="password"' in page.text for page in pages), "asked for a login"
    assert any('value="consent"' in page.text for page in pages), "consent was not asked again"
    tokens = _exchange(metadata, again["query"]["code"], again["verifier"]).json()
    claims = _id_token_claims(metadata, tokens)
    assert claims["sub"] == "grace"


# -- favicon -----------------------------------------------------------------


def test_favicon(idp: DevIdP) -> None:
    """/favicon.ico is a small image, cacheable, served without the provider's 404."""
    response = requests.get(idp.url("/favicon.ico"), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("image/")
    assert "max-age=" in response.headers.get("Cache-Control", "")
    assert 0 < len(response.content) < 4096
    if response.headers["Content-Type"].startswith("image/svg+xml"):
        assert response.content.lstrip().startswith(b"<svg")

    head = requests.head(idp.url("/favicon.ico"), timeout=10)
    assert head.status_code == 200
    assert head.content == b""
    assert requests.get(idp.url("/favicon.png"), timeout=10).status_code == 404
