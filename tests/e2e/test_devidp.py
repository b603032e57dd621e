"""Smoke tests for the development OpenID provider (example/devidp) and tests/idp.py.

They need Node.js but not Django; run them alone with
``python -m pytest tests/test_devidp.py -p no:django``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.idp import DevIdP, end_session_via_devidp, login_via_devidp

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
    metadata: dict, login: str, session: requests.Session | None = None, **overrides: str
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
    response = login_via_devidp(session, url, login)
    location = response.headers["Location"]
    return {
        "session": session,
        "params": params,
        "verifier": verifier,
        "response": response,
        "location": location,
        "query": {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()},
    }


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
    claims = jwt.decode(
        tokens["id_token"],
        KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json()),
        algorithms=["RS256"],
    ).claims
    assert claims["sub"] == "dave"


def test_startup_failure_is_reported() -> None:
    with pytest.raises(RuntimeError, match="client_secret"):
        with DevIdP([{"client_id": "no-secret", "redirect_uris": [REDIRECT_URI]}]):
            pass
