"""Tests of the forged provider itself (tests/forge.py), not of the relying party.

Run: python -m pytest tests/test_forge.py -p no:django -q
"""

import base64
import json
import time

import pytest
import requests
from joserfc import jwt
from joserfc.errors import BadSignatureError, ClaimError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet, OctKey, RSAKey

try:
    from tests.forge import ForgedProvider, client_auth_method, tamper_signature
except ImportError:  # run from inside tests/
    from forge import ForgedProvider, client_auth_method, tamper_signature


@pytest.fixture(scope="module")
def forge():
    with ForgedProvider() as op:
        yield op


@pytest.fixture(autouse=True)
def reset(forge):
    # Restore every knob between tests; the server (and its port) is shared.
    forge.metadata = forge.default_metadata()
    forge.jwks = {"keys": [forge.public_jwk()]}
    forge.userinfo = {"sub": "forged-user"}
    forge.token_body = None
    forge.token_status = forge.metadata_status = forge.jwks_status = forge.userinfo_status = 200
    forge.delay = {}
    forge.requests_log.clear()


def segments(token):
    def dec(part):
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    head, payload, sig = token.split(".")
    return dec(head), dec(payload), sig


def public_keyset(forge):
    return KeySet.import_key_set(forge.jwks)


def verified_claims(forge, token, *, key=None, algorithms=("RS256",), nonce=None):
    """Verify like a strict RP would: signature, then iss/aud/sub/exp/iat/nonce."""
    decoded = jwt.decode(token, key or public_keyset(forge), algorithms=list(algorithms))
    options = {
        "iss": {"essential": True, "value": forge.issuer},
        "aud": {"essential": True, "value": forge.client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
    jwt.JWTClaimsRegistry(**options).validate(decoded.claims)
    return decoded


# -- server ----------------------------------------------------------------


def test_discovery_served_and_mutable(forge):
    url = forge.issuer + "/.well-known/openid-configuration"
    doc = requests.get(url, timeout=5).json()
    assert forge.issuer.startswith("http://127.0.0.1:")
    assert doc["issuer"] == forge.issuer
    assert doc["jwks_uri"] == forge.issuer + "/jwks"
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert doc["authorization_response_iss_parameter_supported"] is True

    forge.metadata["issuer"] = "https://evil.example"
    assert requests.get(url, timeout=5).json()["issuer"] == "https://evil.example"

    forge.metadata_status = 500
    assert requests.get(url, timeout=5).status_code == 500
    forge.metadata_status, forge.metadata = 200, "{not json"
    assert requests.get(url, timeout=5).text == "{not json"


def test_jwks_is_public_only_and_has_kid(forge):
    keys = requests.get(forge.issuer + "/jwks", timeout=5).json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kid"] == forge.signing_key.kid
    assert "d" not in keys[0] and keys[0]["kty"] == "RSA"
    assert requests.get(forge.issuer + "/jwks/r4nd0m", timeout=5).json()["keys"] == keys
    forge.jwks_status = 503
    assert requests.get(forge.issuer + "/jwks", timeout=5).status_code == 503


def test_token_endpoint_records_form_and_client_auth(forge):
    forge.token_body = lambda form: forge.token_response_for(
        "x.y.z", echoed=form.get("code_verifier")
    )
    r = requests.post(
        forge.issuer + "/token",
        data={"grant_type": "authorization_code", "code": "c", "code_verifier": "v" * 43},
        auth=(forge.client_id, forge.client_secret),
        timeout=5,
    )
    assert r.status_code == 200
    assert r.json()["echoed"] == "v" * 43 and r.json()["token_type"] == "Bearer"
    (entry,) = forge.requests_to("/token")
    assert entry.method == "POST" and entry.params["code_verifier"] == "v" * 43
    assert client_auth_method(entry) == "client_secret_basic"

    forge.token_status, forge.token_body = 400, {"error": "invalid_grant"}
    r = requests.post(
        forge.issuer + "/token", data={"client_id": "a", "client_secret": "b"}, timeout=5
    )
    assert r.status_code == 400 and r.json() == {"error": "invalid_grant"}
    assert client_auth_method(forge.requests_to("/token")[-1]) == "client_secret_post"


def test_token_endpoint_without_body_configured_is_an_error(forge):
    assert requests.post(forge.issuer + "/token", data={}, timeout=5).status_code == 400


def test_userinfo_requires_bearer(forge):
    url = forge.issuer + "/userinfo"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer at"}, timeout=5).json() == {
        "sub": "forged-user"
    }
    assert requests.post(url, data={"access_token": "at"}, timeout=5).status_code == 200
    forge.userinfo = forge.id_token()
    r = requests.get(url, headers={"Authorization": "Bearer at"}, timeout=5)
    assert r.headers["Content-Type"] == "application/jwt" and r.text == forge.userinfo
    forge.userinfo = None
    assert requests.get(url, headers={"Authorization": "Bearer at"}, timeout=5).status_code == 401
    assert forge.requests_to("/userinfo")[1].headers["authorization"] == "Bearer at"


def test_delay_makes_client_time_out(forge):
    forge.delay["jwks"] = 2
    start = time.monotonic()
    with pytest.raises(requests.Timeout):
        requests.get(forge.issuer + "/jwks", timeout=0.3)
    assert time.monotonic() - start < 1.5


def test_authorize_redirects_with_callback_params(forge):
    r = requests.get(
        forge.issuer + "/authorize",
        params={"redirect_uri": "http://rp.test/cb", "state": "s1", "nonce": "n1"},
        allow_redirects=False,
        timeout=5,
    )
    assert r.status_code == 302
    assert r.headers["Location"].startswith("http://rp.test/cb?code=forged-code&state=s1&iss=http")
    assert forge.requests_to("/authorize")[0].params["nonce"] == "n1"


def test_callback_params(forge):
    assert forge.callback_params("s") == {"code": "forged-code", "state": "s", "iss": forge.issuer}
    assert forge.callback_params("s", iss=None, error="access_denied", code=None) == {
        "state": "s",
        "error": "access_denied",
    }


def test_rotate_key(forge):
    old = forge.signing_key
    try:
        forge.rotate_key()
        assert forge.signing_key.kid != old.kid
        assert [k["kid"] for k in forge.jwks["keys"]] == [forge.signing_key.kid]
        verified_claims(forge, forge.id_token())
    finally:
        forge.signing_key = old


# -- id tokens ---------------------------------------------------------------


def test_default_id_token_is_valid(forge):
    token = forge.id_token(nonce="n-1")
    decoded = verified_claims(forge, token, nonce="n-1")
    assert decoded.header == {"alg": "RS256", "typ": "JWT", "kid": forge.signing_key.kid}
    claims = decoded.claims
    assert claims["sub"] == "forged-user" and claims["aud"] == forge.client_id
    assert claims["exp"] - claims["iat"] == 300 and "auth_time" in claims and "azp" not in claims


def test_alg_none_is_unsigned(forge):
    token = forge.id_token(alg="none")
    header, claims, sig = segments(token)
    assert token.endswith(".") and sig == ""
    assert header == {"alg": "none", "typ": "JWT"}
    assert claims["iss"] == forge.issuer
    with pytest.raises(JoseError):
        jwt.decode(token, public_keyset(forge))


def test_hs256_uses_client_secret(forge):
    token = forge.id_token(alg="HS256")
    assert segments(token)[0] == {"alg": "HS256", "typ": "JWT"}
    with pytest.warns(Warning):  # joserfc: short HMAC key
        secret = OctKey.import_key(forge.client_secret)
    verified_claims(forge, token, key=secret, algorithms=["HS256"])
    with pytest.raises(JoseError):  # a strict RS256-only RP refuses it
        verified_claims(forge, token)


def test_wrong_key_same_kid_fails(forge):
    wrong = forge.wrong_key()
    token = forge.id_token(key=wrong)
    assert segments(token)[0]["kid"] == forge.signing_key.kid
    with pytest.raises(BadSignatureError):
        verified_claims(forge, token)
    verified_claims(
        forge, token, key=RSAKey.import_key(forge.public_jwk(wrong))
    )  # it is a real signature


def test_unknown_kid_and_absent_kid(forge):
    token = forge.id_token(header_overrides={"kid": "no-such-kid"})
    with pytest.raises(InvalidKeyIdError):
        verified_claims(forge, token)
    token = forge.id_token(header_overrides={"kid": None})
    assert "kid" not in segments(token)[0]
    verified_claims(forge, token, key=forge.signing_key)


def test_kid_absent_with_several_keys_published(forge):
    spares = [forge.wrong_key(n=i) for i in range(2)]
    assert spares[0].thumbprint() != spares[1].thumbprint()
    forge.jwks = {"keys": [forge.public_jwk(k, kid=None) for k in (*spares, forge.signing_key)]}
    token = forge.id_token(header_overrides={"kid": None})
    published = [RSAKey.import_key(k) for k in forge.jwks["keys"]]
    assert all("kid" not in k for k in forge.jwks["keys"])
    verified_claims(forge, token, key=published[2])
    with pytest.raises(BadSignatureError):
        verified_claims(forge, token, key=published[0])


def test_tampered_signature_fails(forge):
    token = forge.id_token()
    bad = tamper_signature(token)
    assert bad != token and bad.rsplit(".", 1)[0] == token.rsplit(".", 1)[0]
    with pytest.raises(BadSignatureError):
        verified_claims(forge, bad)


@pytest.mark.parametrize(
    "kwargs, claim",
    [
        ({"claims_overrides": {"iss": "https://evil.example"}}, "iss"),
        ({"claims_overrides": {"aud": "someone-else"}}, "aud"),
        ({"claims_overrides": {"exp": int(time.time()) - 600}}, "exp"),
        ({"claims_overrides": {"iat": int(time.time()) + 3600}}, "iat"),
        ({"omit": ("sub",)}, "sub"),
        ({"omit": ("iat",)}, "iat"),
        ({"nonce": "not-the-nonce"}, "nonce"),
        ({"nonce": None}, "nonce"),  # nonce absent
    ],
)
def test_bad_claims_are_signed_but_rejected(forge, kwargs, claim):
    token = forge.id_token(**{"nonce": "the-nonce", **kwargs})
    jwt.decode(token, public_keyset(forge), algorithms=["RS256"])  # signature is fine
    with pytest.raises(ClaimError) as info:
        verified_claims(forge, token, nonce="the-nonce")
    assert info.value.claim == claim


def test_aud_list_with_azp(forge):
    token = forge.id_token({"aud": [forge.client_id, "other-client"], "azp": forge.client_id})
    claims = verified_claims(forge, token).claims  # joserfc alone accepts; the RP must decide
    assert claims["aud"] == [forge.client_id, "other-client"] and claims["azp"] == forge.client_id


def test_token_response_for(forge):
    body = forge.token_response_for("a.b.c", scope="openid")
    assert body["id_token"] == "a.b.c" and body["expires_in"] == 300 and body["scope"] == "openid"
    assert body["access_token"] != forge.token_response_for("a.b.c")["access_token"]
    assert "id_token" not in forge.token_response_for(None)
