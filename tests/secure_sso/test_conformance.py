"""The relying party against a forged provider, one test per OpenID conformance RP module.

Each ``test_oidcc_client_test_*`` follows a module of the OpenID Foundation's
``oidcc-client-*`` relying-party suite (Basic RP and Config RP plans, code flow),
as listed in ``tests/CONFORMANCE.md``; the other tests cover the OpenID Connect
Core 3.1.3.7 checks those plans leave out, transport failures, pinned behaviour the
provider's metadata must not change, and hostile input at the callback.

Nothing is mocked: :class:`tests.forge.ForgedProvider` is a real HTTP server on
loopback, and the views are driven through Django's test client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey, OKPKey
from joserfc.jws import JWSRegistry
from structlog.testing import capture_logs

from secure_sso import client as sso_client
from secure_sso.constants import SESSION_PENDING_KEY
from secure_sso.exceptions import ProviderMetadataError
from tests.forge import ForgedProvider, b64url, client_auth_method, tamper_signature
from tests.forged_signin import query_of

pytestmark = pytest.mark.django_db

LOGIN_URL = "/sso/login/"
CALLBACK_URL = "/sso/callback/"
SUCCESS_EVENT = "auth.login.success"
FAILURE_EVENT = "auth.login.failure"
HTTP_TIMEOUT = 1
#: Longer than HTTP_TIMEOUT: the forge answers too late for the relying party.
SLOW = 3


# -- fixtures ------------------------------------------------------------------


@pytest.fixture
def sso_settings_extra() -> dict[str, Any]:
    return {"HTTP_TIMEOUT": HTTP_TIMEOUT}


@pytest.fixture
def op(forge: ForgedProvider, configure: Callable[..., None]) -> ForgedProvider:
    """The forge, with the relying party configured to use it."""
    return forge


# -- driving the flow ----------------------------------------------------------


@dataclass
class Login:
    """A started sign-in: the provider URL the relying party redirected to."""

    url: str
    query: dict[str, str]

    @property
    def state(self) -> str:
        return self.query["state"]

    @property
    def nonce(self) -> str:
        return self.query["nonce"]


@dataclass
class Attempt:
    """A finished callback: the response, the structlog events, and what must stay secret."""

    response: Any
    logs: list[dict[str, Any]]
    secrets: list[str] = field(default_factory=list)
    login: Login | None = None

    def events(self, name: str) -> list[dict[str, Any]]:
        return [entry for entry in self.logs if entry.get("event") == name]


def start(client: Client, next_url: str | None = None) -> Login:
    response = client.get(LOGIN_URL, {"next": next_url} if next_url else {})
    assert response.status_code == 302, response.content[:500]
    url = response["Location"]
    return Login(url=url, query=query_of(url))


def callback(client: Client, params: dict[str, Any], *, secret_values=()) -> Attempt:
    with capture_logs() as logs:
        response = client.get(CALLBACK_URL, params)
    return Attempt(response, logs, [str(v) for v in secret_values if v])


def sign_in(
    client: Client,
    forge: ForgedProvider,
    build: Callable[[str], str | None] | None = None,
    *,
    params: Callable[[str], dict[str, Any]] | None = None,
    token_body: Any = None,
) -> Attempt:
    """One whole sign-in: login, forge the answers, hit the callback.

    ``build(nonce)`` returns the ID token (``None`` for none at all); ``params(state)``
    the callback's query; ``token_body`` replaces the whole token endpoint answer.
    """
    login = start(client)
    id_token = build(login.nonce) if build else forge.id_token(nonce=login.nonce)
    body = forge.token_response_for(id_token) if token_body is None else token_body
    forge.token_body = body
    query = params(login.state) if params else forge.callback_params(login.state)
    leaks = [id_token, query.get("code"), forge.client_secret, login.nonce]
    if isinstance(body, dict):
        leaks.append(body.get("access_token"))
    attempt = callback(client, query, secret_values=leaks)
    attempt.login = login
    return attempt


def assert_refused(
    client: Client, attempt: Attempt, *, status: int, reason: str
) -> None:
    """The sign-in was refused with ``status`` and audit ``reason``, nothing leaked, nobody in."""
    response = attempt.response
    assert response.status_code == status, (response.status_code, response.content[:500])
    page = response.content.decode()
    assert "Sign in again" in page
    assert f'href="{LOGIN_URL}"' in page
    assert "_auth_user_id" not in client.session
    for value in attempt.secrets:
        assert value not in page
        assert value not in repr(attempt.logs)
    failures = attempt.events(FAILURE_EVENT)
    assert [(f["reason"], f["status"]) for f in failures] == [(reason, status)], attempt.logs
    assert not attempt.events(SUCCESS_EVENT)
    assert "no-store" in response.get("Cache-Control", "")


def assert_accepted(client: Client, attempt: Attempt, *, location: str = "/dashboard/") -> None:
    """The sign-in succeeded: redirect onwards, a session, a success event."""
    response = attempt.response
    assert response.status_code == 302, (response.status_code, response.content[:500])
    assert response["Location"] == location
    assert "_auth_user_id" in client.session
    assert len(attempt.events(SUCCESS_EVENT)) == 1, attempt.logs
    assert not attempt.events(FAILURE_EVENT)


def assert_id_token_refused(
    client: Client, forge: ForgedProvider, attempt: Attempt, reason: str
) -> None:
    """An ID-token refusal: 400, the specific check's code, and userinfo never called.

    The conformance suite scores an RP by whether it calls userinfo after a bad ID token.
    """
    assert_refused(client, attempt, status=400, reason=reason)
    assert forge.requests_to("/userinfo") == []


def now() -> int:
    return int(time.time())


def ec_key(crv: str = "P-256", kid: str | None = "forge-ec-1") -> ECKey:
    key = ECKey.generate_key(crv, private=True)
    raw = key.as_dict(private=True)
    if kid:
        raw["kid"] = kid
    return ECKey.import_key(raw)


def public(key: Any, *, alg: str | None = None, kid: bool = True) -> dict[str, Any]:
    jwk = key.as_dict(private=False)
    jwk["use"] = "sig"
    if alg:
        jwk["alg"] = alg
    if not kid:
        jwk.pop("kid", None)
    return jwk


# -- Basic RP plan ---------------------------------------------------------------


def test_oidcc_client_test(client, op):
    """The provider runs a normal code flow with userinfo; the RP must sign the user in."""
    op.userinfo = {"sub": "forged-user", "preferred_username": "forged.person"}
    attempt = sign_in(client, op)
    assert_accepted(client, attempt)
    [token_request] = op.requests_to("/token")
    assert token_request.method == "POST"
    assert token_request.params["grant_type"] == "authorization_code"
    assert token_request.params["code"] == "forged-code"
    assert token_request.params["redirect_uri"] == attempt.login.query["redirect_uri"]
    assert len(op.requests_to("/userinfo")) == 1
    assert client.get("/dashboard/").content == b"dashboard: forged.person"


def test_oidcc_client_test_invalid_iss(client, op):
    """The ID token's iss has "1" appended; the RP must refuse it as an issuer mismatch."""
    attempt = sign_in(client, op, lambda n: op.id_token({"iss": op.issuer + "1"}, nonce=n))
    assert_id_token_refused(client, op, attempt, "id_token_iss_invalid")


def test_oidcc_client_test_missing_sub(client, op):
    """The ID token has no sub; the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, omit=("sub",)))
    assert_id_token_refused(client, op, attempt, "id_token_sub_invalid")


def test_oidcc_client_test_invalid_aud(client, op):
    """The ID token's aud is the client_id with "1" appended; the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token({"aud": op.client_id + "1"}, nonce=n))
    assert_id_token_refused(client, op, attempt, "id_token_aud_invalid")


def test_oidcc_client_test_missing_aud(client, op):
    """The ID token has no aud; the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, omit=("aud",)))
    assert_id_token_refused(client, op, attempt, "id_token_aud_invalid")


def test_oidcc_client_test_missing_iat(client, op):
    """The ID token has no iat; the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, omit=("iat",)))
    assert_id_token_refused(client, op, attempt, "id_token_iat_invalid")


def test_oidcc_client_test_kid_absent_single_jwks(client, op):
    """No kid anywhere and one RSA key beside EC and OKP keys; the RP must use the RSA key."""
    op.jwks = {
        "keys": [
            op.public_jwk(kid=None),
            public(ec_key("P-256", kid=None), kid=False),
            public(ec_key("secp256k1", kid=None), kid=False),
            public(OKPKey.generate_key("Ed25519", private=True), kid=False),
        ]
    }
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, header_overrides={"kid": None}))
    assert_accepted(client, attempt)


def test_oidcc_client_test_kid_absent_single_jwks_rsa_only(client, op):
    """No kid anywhere and exactly one key in the JWKS; the RP must use that key."""
    op.jwks = {"keys": [op.public_jwk(kid=None)]}
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, header_overrides={"kid": None}))
    assert_accepted(client, attempt)


def test_oidcc_client_test_kid_absent_multiple_jwks(client, op):
    """No kid and three RSA keys published; the RP must refuse the ambiguous key choice."""
    op.jwks = {
        "keys": [
            op.public_jwk(op.wrong_key(n=1), kid=None),
            op.public_jwk(op.wrong_key(n=2), kid=None),
            op.public_jwk(kid=None),
        ]
    }
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, header_overrides={"kid": None}))
    assert_id_token_refused(client, op, attempt, "id_token_kid_ambiguous")


def test_oidcc_client_test_idtoken_sig_rs256(client, op):
    """The provider signs with RS256 and advertises only RS256; the RP must accept it."""
    op.metadata["id_token_signing_alg_values_supported"] = ["RS256"]
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, alg="RS256"))
    assert_accepted(client, attempt)


def test_oidcc_client_test_idtoken_sig_none(client, op):
    """The provider advertises alg none and sends an unsigned ID token; the RP must refuse it."""
    op.metadata["id_token_signing_alg_values_supported"] = ["none"]
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, alg="none"))
    assert_id_token_refused(client, op, attempt, "id_token_signature_invalid")


def test_oidcc_client_test_idtoken_sig_none_even_if_pinned_by_mistake(client, op, configure):
    """ID_TOKEN_ALGORITHMS wrongly lists none and the token is unsigned; the RP must refuse it."""
    configure(ID_TOKEN_ALGORITHMS=["RS256", "none"])
    op.metadata["id_token_signing_alg_values_supported"] = ["none"]
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, alg="none"))
    assert_id_token_refused(client, op, attempt, "id_token_signature_invalid")


def test_hs256_with_client_secret_even_if_pinned_by_mistake(client, op, configure):
    """ID_TOKEN_ALGORITHMS wrongly lists HS256 and the token is HMAC'd with the client secret;
    the RP must still refuse it."""
    configure(ID_TOKEN_ALGORITHMS=["RS256", "HS256"])
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, alg="HS256"))
    assert_id_token_refused(client, op, attempt, "id_token_signature_invalid")


def test_oidcc_client_test_invalid_sig_rs256(client, op):
    """The RS256 ID token's signature is corrupted; the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: tamper_signature(op.id_token(nonce=n)))
    assert_id_token_refused(client, op, attempt, "id_token_signature_invalid")


def test_oidcc_client_test_invalid_sig_hs256(client, op):
    """An HS256 ID token (client secret) with a broken signature; the RP must refuse it."""
    op.metadata["id_token_signing_alg_values_supported"] = ["HS256"]
    attempt = sign_in(
        client, op, lambda n: tamper_signature(op.id_token(nonce=n, alg="HS256"))
    )
    assert_id_token_refused(client, op, attempt, "id_token_signature_invalid")


def test_oidcc_client_test_invalid_sig_es256(client, op, configure):
    """An ES256 ID token from a published key with a broken signature; the RP must refuse it."""
    configure(ID_TOKEN_ALGORITHMS=["ES256"])
    key = ec_key()
    op.jwks = {"keys": [public(key, alg="ES256")]}
    op.metadata["id_token_signing_alg_values_supported"] = ["ES256"]
    attempt = sign_in(
        client, op, lambda n: tamper_signature(op.id_token(nonce=n, key=key, alg="ES256"))
    )
    assert_id_token_refused(client, op, attempt, "id_token_signature_invalid")
    # The same token unbroken is accepted: the signature is what was refused.
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, key=key, alg="ES256"))
    assert_accepted(client, attempt)


def test_oidcc_client_test_nonce_invalid(client, op):
    """The ID token's nonce has "1" appended; the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n + "1"))
    assert_id_token_refused(client, op, attempt, "id_token_nonce_invalid")


def test_oidcc_client_test_nonce_missing(client, op):
    """The ID token has no nonce although one was sent; the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=None))
    assert_id_token_refused(client, op, attempt, "id_token_nonce_invalid")


def test_oidcc_client_test_nonce_from_another_login(client, op):
    """The ID token carries the nonce of another sign-in in the same browser; the RP must refuse."""
    other = start(client)
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=other.nonce))
    assert_id_token_refused(client, op, attempt, "id_token_nonce_invalid")


def test_oidcc_client_test_nonce_unless_code_flow(client, op):
    """The provider requires a nonce in the request; the RP must always send a fresh one."""
    first, second = start(client), start(client)
    assert len(first.nonce) >= 43
    assert first.nonce != second.nonce
    assert first.nonce != first.state


def test_oidcc_client_test_userinfo_invalid_sub(client, op):
    """Userinfo names another sub than the ID token; the RP must refuse the sign-in."""
    op.userinfo = {"sub": "forged-userinvalid", "email": "x@example.test"}
    attempt = sign_in(client, op)
    assert_refused(client, attempt, status=400, reason="userinfo_sub_mismatch")


def test_oidcc_client_test_scope_userinfo_claims(client, op):
    """The provider filters userinfo by scope; the RP must ask for profile/email and use them."""
    op.userinfo = {
        "sub": "forged-user",
        "email": "person@example.test",
        "email_verified": True,
        "given_name": "Forged",
        "family_name": "Person",
    }
    attempt = sign_in(client, op)
    assert_accepted(client, attempt)
    scopes = attempt.login.query["scope"].split()
    assert scopes[0] == "openid"
    assert {"profile", "email"} <= set(scopes)
    user = get_user_model().objects.get(pk=client.session["_auth_user_id"])
    assert (user.email, user.first_name, user.last_name) == (
        "person@example.test",
        "Forged",
        "Person",
    )


def test_oidcc_client_test_client_secret_basic(client, op):
    """The token endpoint requires HTTP Basic client auth; the RP (default) must use it."""
    attempt = sign_in(client, op)
    assert_accepted(client, attempt)
    [request] = op.requests_to("/token")
    assert client_auth_method(request) == "client_secret_basic"
    encoded = request.headers["authorization"].split(" ", 1)[1]
    assert base64.b64decode(encoded).decode() == f"{op.client_id}:{op.client_secret}"
    assert "client_secret" not in request.params


def test_oidcc_client_test_client_secret_post(client, op, configure):
    """TOKEN_ENDPOINT_AUTH_METHOD is client_secret_post; the RP must send the secret in the body."""
    configure(TOKEN_ENDPOINT_AUTH_METHOD="client_secret_post")
    attempt = sign_in(client, op)
    assert_accepted(client, attempt)
    [request] = op.requests_to("/token")
    assert client_auth_method(request) == "client_secret_post"
    assert "authorization" not in request.headers
    assert request.params["client_id"] == op.client_id
    assert request.params["client_secret"] == op.client_secret


def test_oidcc_client_test_userinfo_bearer_header(client, op):
    """Userinfo accepts the access token only as a Bearer header; the RP must send it there."""
    attempt = sign_in(client, op)
    assert_accepted(client, attempt)
    [request] = op.requests_to("/userinfo")
    access_token = op.token_body["access_token"]
    assert request.headers["authorization"] == f"Bearer {access_token}"
    assert "access_token" not in request.params


def test_oidcc_client_test_userinfo_signed(client, op):
    """Userinfo comes back as a signed JWT, which this RP does not support; it must fail closed."""
    op.userinfo = op.id_token()
    attempt = sign_in(client, op)
    assert_refused(client, attempt, status=502, reason="provider_unavailable")


# -- Config RP plan --------------------------------------------------------------


def test_oidcc_client_test_discovery_openid_config(client, op):
    """Normal discovery; the RP must use the discovered endpoints for every step."""
    attempt = sign_in(client, op)
    assert_accepted(client, attempt)
    assert attempt.login.url.startswith(op.metadata["authorization_endpoint"] + "?")
    paths = [r.path for r in op.requests_log]
    assert paths == ["/.well-known/openid-configuration", "/token", "/jwks", "/userinfo"]


def test_oidcc_client_test_discovery_jwks_uri_keys(client, op):
    """The jwks_uri has a random path; the RP must fetch keys from the discovered jwks_uri."""
    path = "/jwks/" + secrets.token_hex(8)
    op.metadata["jwks_uri"] = op.issuer + path
    attempt = sign_in(client, op)
    assert_accepted(client, attempt)
    assert len(op.requests_to(path)) == 1
    assert op.requests_to("/jwks") == []


def test_oidcc_client_test_discovery_issuer_mismatch(client, op):
    """The discovery issuer has "INVALID" appended; the RP must stop before redirecting."""
    op.metadata["issuer"] = op.issuer + "INVALID"
    with capture_logs() as logs:
        response = client.get(LOGIN_URL)
    attempt = Attempt(response, logs, [op.client_secret])
    assert_refused(client, attempt, status=502, reason="provider_metadata_invalid")
    assert SESSION_PENDING_KEY not in client.session
    assert [r.path for r in op.requests_log] == ["/.well-known/openid-configuration"]


def test_oidcc_client_test_signing_key_rotation(client, op):
    """After a first sign-in the provider rotates to a new kid; the RP must refetch and accept."""
    assert_accepted(client, sign_in(client, op))
    client.logout()
    op.rotate_key()
    attempt = sign_in(client, op)
    assert_accepted(client, attempt)
    assert len(op.requests_to("/jwks")) == 2


def test_oidcc_client_test_signing_key_rotation_just_before_signing(client, op):
    """Keys rotate after the RP cached the JWKS, before the token is signed; the RP must accept."""
    sso_client.get_key_set()
    assert len(op.requests_to("/jwks")) == 1
    op.rotate_key()
    attempt = sign_in(client, op)
    assert_accepted(client, attempt)
    assert len(op.requests_to("/jwks")) == 2


def test_unknown_kid_after_refetch_is_refused_and_refetch_rate_limited(client, op):
    """The token names a kid the JWKS never has; the RP must refuse, refetching at most once."""
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, header_overrides={"kid": "nope"}))
    assert_id_token_refused(client, op, attempt, "id_token_unknown_kid")
    # One fetch, then one refetch for the unknown kid.
    assert len(op.requests_to("/jwks")) == 2
    # A second unknown kid inside JWKS_MIN_REFRESH_INTERVAL must not refetch again.
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, header_overrides={"kid": "x"}))
    assert_id_token_refused(client, op, attempt, "id_token_unknown_kid")
    assert len(op.requests_to("/jwks")) == 2


# -- OIDC Core 3.1.3.7 checks outside the Basic/Config plans ---------------------


def test_aud_as_single_element_list_is_accepted(client, op):
    """aud is [client_id] (fapi1 valid-aud-as-array); the RP must accept it."""
    attempt = sign_in(client, op, lambda n: op.id_token({"aud": [op.client_id]}, nonce=n))
    assert_accepted(client, attempt)


def test_aud_list_with_untrusted_audience_and_no_azp_is_refused(client, op):
    """aud has a second, untrusted audience and no azp (fapi1 invalid-secondary-aud); refuse."""
    attempt = sign_in(
        client, op, lambda n: op.id_token({"aud": [op.client_id, "other"]}, nonce=n)
    )
    assert_id_token_refused(client, op, attempt, "id_token_azp_invalid")


def test_aud_list_with_azp_client_id_is_accepted(client, op):
    """aud has several audiences and azp is our client_id (3.1.3.7 steps 4-5); the RP accepts."""
    attempt = sign_in(
        client,
        op,
        lambda n: op.id_token({"aud": [op.client_id, "other"], "azp": op.client_id}, nonce=n),
    )
    assert_accepted(client, attempt)


def test_aud_list_without_client_id_is_refused(client, op):
    """aud is a list that does not contain our client_id; the RP must refuse it."""
    attempt = sign_in(
        client, op, lambda n: op.id_token({"aud": ["other", "another"], "azp": "other"}, nonce=n)
    )
    assert_id_token_refused(client, op, attempt, "id_token_aud_invalid")


def test_aud_of_wrong_type_is_refused(client, op):
    """aud is a number; the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token({"aud": 42}, nonce=n))
    assert_id_token_refused(client, op, attempt, "id_token_aud_invalid")


def test_invalid_azp_is_refused(client, op):
    """azp names another client (refresh-token-invalid-azp); the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token({"azp": "other"}, nonce=n))
    assert_id_token_refused(client, op, attempt, "id_token_azp_invalid")


def test_expired_exp_is_refused(client, op):
    """exp is six minutes ago (fapi1 invalid-expired-exp); the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token({"exp": now() - 360}, nonce=n))
    assert_id_token_refused(client, op, attempt, "id_token_expired")


def test_missing_exp_is_refused(client, op):
    """exp is missing (fapi1 invalid-missing-exp); the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, omit=("exp",)))
    assert_id_token_refused(client, op, attempt, "id_token_exp_invalid")


def test_exp_within_clock_skew_is_accepted(client, op):
    """exp passed a few seconds ago, inside CLOCK_SKEW; the RP must accept it."""
    attempt = sign_in(client, op, lambda n: op.id_token({"exp": now() - 10}, nonce=n))
    assert_accepted(client, attempt)


def test_iat_week_in_past_is_refused(client, op):
    """iat is a week ago (fapi1 iat-is-week-in-past); the RP must refuse it beyond max age."""
    attempt = sign_in(client, op, lambda n: op.id_token({"iat": now() - 7 * 86400}, nonce=n))
    assert_id_token_refused(client, op, attempt, "id_token_iat_invalid")


def test_iat_far_future_is_refused(client, op):
    """iat is an hour ahead; the RP must refuse it beyond the clock-skew leeway."""
    attempt = sign_in(client, op, lambda n: op.id_token({"iat": now() + 3600}, nonce=n))
    assert_id_token_refused(client, op, attempt, "id_token_iat_invalid")


def test_iat_of_wrong_type_is_refused(client, op):
    """iat is a string; the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token({"iat": str(now())}, nonce=n))
    assert_id_token_refused(client, op, attempt, "id_token_iat_invalid")


def test_nbf_in_future_is_refused(client, op):
    """nbf is an hour ahead; the RP must refuse the token as not yet valid."""
    attempt = sign_in(client, op, lambda n: op.id_token({"nbf": now() + 3600}, nonce=n))
    assert_id_token_refused(client, op, attempt, "id_token_nbf_invalid")


def test_missing_iss_is_refused(client, op):
    """iss is missing (fapi1 invalid-missing-iss); the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, omit=("iss",)))
    assert_id_token_refused(client, op, attempt, "id_token_iss_invalid")


def test_iss_with_trailing_slash_is_refused(client, op):
    """iss differs only by a trailing slash; the RP must compare exactly and refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token({"iss": op.issuer + "/"}, nonce=n))
    assert_id_token_refused(client, op, attempt, "id_token_iss_invalid")


def test_overlong_sub_is_refused(client, op):
    """sub is longer than 255 characters; the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, sub="s" * 256))
    assert_id_token_refused(client, op, attempt, "id_token_sub_invalid")


def test_alg_none_is_refused_with_lying_header(client, op):
    """An unsigned token whose header claims RS256 (fapi1 invalid-null-alg); the RP must refuse."""
    attempt = sign_in(
        client,
        op,
        lambda n: op.id_token(nonce=n, alg="none", header_overrides={"alg": "RS256"}),
    )
    assert_id_token_refused(client, op, attempt, "id_token_signature_invalid")


def test_wrong_key_same_kid_is_refused(client, op):
    """A valid signature by an unpublished key that reuses the published kid; the RP refuses."""
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, key=op.wrong_key()))
    assert_id_token_refused(client, op, attempt, "id_token_signature_invalid")


def test_valid_hs256_with_client_secret_is_refused(client, op):
    """A correctly HS256-signed token keyed with the client secret; an RS256-pinned RP refuses."""
    op.metadata["id_token_signing_alg_values_supported"] = ["HS256"]
    attempt = sign_in(client, op, lambda n: op.id_token(nonce=n, alg="HS256"))
    assert_id_token_refused(client, op, attempt, "id_token_signature_invalid")


def test_hs256_keyed_with_published_rsa_key_is_refused(client, op):
    """HS256 keyed with the published RSA public key (key confusion); the RP must refuse it."""
    pem = op.signing_key.as_pem(private=False)

    def build(nonce: str) -> str:
        claims = {"iss": op.issuer, "sub": "forged-user", "aud": op.client_id,
                  "iat": now(), "exp": now() + 300, "nonce": nonce}
        header = {"alg": "HS256", "typ": "JWT", "kid": op.signing_key.kid}
        signing_input = f"{b64url(header)}.{b64url(claims)}"
        mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(mac)}"

    attempt = sign_in(client, op, build)
    assert_id_token_refused(client, op, attempt, "id_token_signature_invalid")


def test_oct_key_in_jwks_is_never_trusted(client, op, configure):
    """The JWKS publishes a symmetric key and the token uses it; the RP must ignore that key."""
    configure(ID_TOKEN_ALGORITHMS=["RS256", "HS256"])
    secret = "published-symmetric-key-for-forge-tests-only!"
    op.jwks = {
        "keys": [
            op.public_jwk(),
            {"kty": "oct", "kid": "oct-1", "k": b64url(secret), "use": "sig"},
        ]
    }
    attempt = sign_in(
        client,
        op,
        lambda n: op.id_token(nonce=n, alg="HS256", key=secret, header_overrides={"kid": "oct-1"}),
    )
    # HS256 is never honoured, even when pinned by mistake (and the oct key is never imported).
    assert_id_token_refused(client, op, attempt, "id_token_signature_invalid")


def test_malformed_id_token_is_refused(client, op):
    """The id_token is not a compact JWS; the RP must refuse it."""
    attempt = sign_in(client, op, lambda n: "not-a-jwt")
    assert_id_token_refused(client, op, attempt, "id_token_malformed")


def test_id_token_payload_not_json_is_refused(client, op):
    """A correctly signed JWS whose payload is not a JSON object; the RP must refuse it."""

    def build(nonce: str) -> str:
        token = op.id_token(nonce=nonce)
        head = token.split(".")[0]
        signing_input = f"{head}.{b64url('[1, 2, 3]')}"
        sig = JWSRegistry.algorithms["RS256"].sign(signing_input.encode(), op.signing_key)
        return f"{signing_input}.{b64url(sig)}"

    attempt = sign_in(client, op, build)
    [failure] = attempt.events(FAILURE_EVENT)
    # joserfc reports the payload as a JOSE error: either code is a correct refusal.
    assert failure["reason"] in {"id_token_malformed", "id_token_signature_invalid"}
    assert_id_token_refused(client, op, attempt, failure["reason"])


# -- RFC 9207 iss parameter ------------------------------------------------------


def test_rfc9207_iss_parameter_wrong_is_refused(client, op):
    """The callback's iss names another issuer; the RP must refuse before spending the code."""
    attempt = sign_in(
        client, op, params=lambda s: op.callback_params(s, iss="https://evil.example")
    )
    assert_refused(client, attempt, status=400, reason="iss_mismatch")
    assert op.requests_to("/token") == []


def test_rfc9207_iss_parameter_missing_when_advertised_is_refused(client, op):
    """The provider advertises the iss parameter but omits it; the RP must refuse (mix-up)."""
    attempt = sign_in(client, op, params=lambda s: op.callback_params(s, iss=None))
    assert_refused(client, attempt, status=400, reason="iss_missing")
    assert op.requests_to("/token") == []


def test_rfc9207_iss_parameter_missing_when_not_advertised_is_accepted(client, op):
    """The provider does not advertise the iss parameter and omits it; the RP must accept."""
    op.metadata["authorization_response_iss_parameter_supported"] = False
    attempt = sign_in(client, op, params=lambda s: op.callback_params(s, iss=None))
    assert_accepted(client, attempt)


def test_rfc9207_iss_parameter_wrong_when_not_advertised_is_refused(client, op):
    """The provider does not advertise iss, yet a wrong one arrives; the RP must still refuse."""
    op.metadata.pop("authorization_response_iss_parameter_supported")
    attempt = sign_in(
        client, op, params=lambda s: op.callback_params(s, iss=op.issuer + "/other")
    )
    assert_refused(client, attempt, status=400, reason="iss_mismatch")


# -- discovery, JWKS, token and userinfo endpoints failing ---------------------


def test_discovery_outage_fails_closed(client, op):
    """Discovery answers 500; the RP must refuse the sign-in with 502 and not redirect."""
    op.metadata_status = 500
    with capture_logs() as logs:
        response = client.get(LOGIN_URL)
    assert_refused(client, Attempt(response, logs), status=502, reason="provider_unavailable")


def test_discovery_timeout_is_bounded(client, op):
    """Discovery hangs longer than HTTP_TIMEOUT; the RP must give up in time with 502."""
    op.delay["metadata"] = SLOW
    began = time.monotonic()
    with capture_logs() as logs:
        response = client.get(LOGIN_URL)
    assert time.monotonic() - began < SLOW - 0.5
    assert_refused(client, Attempt(response, logs), status=502, reason="provider_unavailable")


def test_discovery_not_json_fails_closed(client, op):
    """Discovery answers HTML; the RP must refuse with 502."""
    op.metadata = "<html>maintenance</html>"
    with capture_logs() as logs:
        response = client.get(LOGIN_URL)
    assert_refused(client, Attempt(response, logs), status=502, reason="provider_unavailable")


def test_discovery_without_code_flow_is_refused(client, op):
    """Discovery says only response_type id_token is supported; the RP must refuse it."""
    op.metadata["response_types_supported"] = ["id_token"]
    with capture_logs() as logs:
        response = client.get(LOGIN_URL)
    assert_refused(
        client, Attempt(response, logs), status=502, reason="provider_metadata_invalid"
    )


def test_discovery_missing_token_endpoint_is_refused(client, op):
    """Discovery lacks token_endpoint; the RP must refuse the metadata."""
    del op.metadata["token_endpoint"]
    with capture_logs() as logs:
        response = client.get(LOGIN_URL)
    assert_refused(
        client, Attempt(response, logs), status=502, reason="provider_metadata_invalid"
    )


def test_jwks_outage_fails_closed(client, op):
    """The JWKS endpoint answers 500; the RP must refuse with 502, nobody signed in."""
    op.jwks_status = 500
    attempt = sign_in(client, op)
    assert_refused(client, attempt, status=502, reason="provider_unavailable")
    assert op.requests_to("/userinfo") == []


def test_jwks_timeout_is_bounded(client, op):
    """The JWKS endpoint hangs longer than HTTP_TIMEOUT; the RP must give up in time with 502."""
    op.delay["jwks"] = SLOW
    began = time.monotonic()
    attempt = sign_in(client, op)
    assert time.monotonic() - began < SLOW - 0.5
    assert_refused(client, attempt, status=502, reason="provider_unavailable")


def test_jwks_without_usable_key_is_refused(client, op):
    """The JWKS holds only a private and an encryption key; the RP must refuse the key set."""
    private = op.signing_key.as_dict(private=True)
    op.jwks = {"keys": [private, op.public_jwk() | {"use": "enc"}]}
    attempt = sign_in(client, op)
    assert_refused(client, attempt, status=502, reason="provider_metadata_invalid")


def test_token_endpoint_outage_fails_closed(client, op):
    """The token endpoint answers 500 with an HTML page; the RP must refuse with 502."""
    op.token_status = 500
    attempt = sign_in(client, op, token_body="<html>Internal Server Error</html>")
    assert_refused(client, attempt, status=502, reason="provider_unavailable")


def test_token_endpoint_500_with_token_body_fails_closed(client, op):
    """The token endpoint answers 500 yet with a token body; the RP must not use that answer."""
    op.token_status = 500
    attempt = sign_in(client, op)
    assert_refused(client, attempt, status=502, reason="provider_unavailable")
    assert op.requests_to("/userinfo") == []


def test_token_endpoint_timeout_is_bounded(client, op):
    """The token endpoint hangs longer than HTTP_TIMEOUT; the RP must give up in time with 502."""
    op.delay["token"] = SLOW
    began = time.monotonic()
    attempt = sign_in(client, op)
    assert time.monotonic() - began < SLOW - 0.5
    assert_refused(client, attempt, status=502, reason="provider_unavailable")


def test_token_endpoint_invalid_grant_is_refused(client, op):
    """The token endpoint answers 400 invalid_grant; the RP must refuse with 400."""
    op.token_body = None  # the forge's default: 400 invalid_grant
    login = start(client)
    attempt = callback(client, op.callback_params(login.state), secret_values=["forged-code"])
    assert_refused(client, attempt, status=400, reason="token_exchange_failed")


def test_token_response_without_id_token_is_refused(client, op):
    """The token response has no id_token; the RP must refuse (never fall back to userinfo)."""
    attempt = sign_in(client, op, lambda n: None)
    assert_id_token_refused(client, op, attempt, "id_token_missing")


def test_token_response_not_bearer_is_refused(client, op):
    """The token response's token_type is not Bearer; the RP must refuse it."""
    login = start(client)
    op.token_body = op.token_response_for(op.id_token(nonce=login.nonce), token_type="MAC")
    attempt = callback(client, op.callback_params(login.state), secret_values=["forged-code"])
    assert_refused(client, attempt, status=502, reason="provider_unavailable")


def test_token_response_without_access_token_is_refused(client, op):
    """The token response has no access_token; the RP must refuse it."""
    login = start(client)
    body = op.token_response_for(op.id_token(nonce=login.nonce))
    del body["access_token"]
    op.token_body = body
    attempt = callback(
        client, op.callback_params(login.state), secret_values=[body["id_token"], "forged-code"]
    )
    assert_refused(client, attempt, status=502, reason="provider_unavailable")


def test_userinfo_outage_fails_closed(client, op):
    """Userinfo answers 500; the RP must refuse with 502 rather than sign in half-verified."""
    op.userinfo_status = 500
    attempt = sign_in(client, op)
    assert_refused(client, attempt, status=502, reason="provider_unavailable")


def test_userinfo_timeout_is_bounded(client, op):
    """Userinfo hangs longer than HTTP_TIMEOUT; the RP must give up in time with 502."""
    op.delay["userinfo"] = SLOW
    began = time.monotonic()
    attempt = sign_in(client, op)
    assert time.monotonic() - began < SLOW - 0.5
    assert_refused(client, attempt, status=502, reason="provider_unavailable")


def test_userinfo_cannot_override_protocol_claims(client, op):
    """Userinfo sends its own iss/aud/nonce; the RP must keep the ID token's values."""
    op.userinfo = {"sub": "forged-user", "iss": "https://evil.example", "aud": "other"}
    attempt = sign_in(client, op)
    assert_accepted(client, attempt)
    assert client.session["_secure_sso_iss"] == op.issuer


# -- client authentication and PKCE ------------------------------------------------


def test_pkce_s256_challenge_and_verifier(client, op):
    """The RP must send an S256 code_challenge and the matching code_verifier at /token."""
    attempt = sign_in(client, op)
    assert_accepted(client, attempt)
    query = attempt.login.query
    assert query["code_challenge_method"] == "S256"
    assert query["response_type"] == "code"
    assert query["client_id"] == op.client_id
    verifier = op.requests_to("/token")[0].params["code_verifier"]
    assert 43 <= len(verifier) <= 128
    assert query["code_challenge"] == b64url(hashlib.sha256(verifier.encode()).digest())
    assert verifier not in attempt.login.url


def test_each_login_has_fresh_state_nonce_and_verifier(client, op):
    """Two sign-ins must never share state, nonce or PKCE challenge."""
    first, second = start(client), start(client)
    for name in ("state", "nonce", "code_challenge"):
        assert first.query[name] != second.query[name]


# -- metadata that tries to change pinned behaviour ------------------------------


def test_metadata_cannot_downgrade_pinned_behaviour(client, op):
    """Metadata offers alg none/HS256, plain PKCE and post auth; the RP must change nothing."""
    op.metadata.update(
        {
            "id_token_signing_alg_values_supported": ["none", "HS256"],
            "code_challenge_methods_supported": ["plain"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "response_modes_supported": ["fragment"],
            "scopes_supported": ["openid"],
        }
    )
    attempt = sign_in(client, op)
    assert_accepted(client, attempt)
    query = attempt.login.query
    assert query["code_challenge_method"] == "S256"
    assert "response_mode" not in query
    assert {"profile", "email"} <= set(query["scope"].split())
    assert client_auth_method(op.requests_to("/token")[0]) == "client_secret_basic"
    for alg in ("HS256", "none"):
        client.logout()
        userinfo_calls = len(op.requests_to("/userinfo"))
        attempt = sign_in(client, op, lambda n, alg=alg: op.id_token(nonce=n, alg=alg))
        assert_refused(client, attempt, status=400, reason="id_token_signature_invalid")
        assert len(op.requests_to("/userinfo")) == userinfo_calls


def test_http_endpoint_off_loopback_is_refused_even_in_development_mode(client, op):
    """Metadata names a plain-http token endpoint on a public host; the RP must refuse it."""
    op.metadata["token_endpoint"] = "http://idp.example.com/token"
    with capture_logs() as logs:
        response = client.get(LOGIN_URL)
    assert_refused(
        client, Attempt(response, logs), status=502, reason="provider_metadata_invalid"
    )


def test_http_issuer_refused_outside_development_mode(client, op, configure):
    """DEVELOPMENT_MODE is off and the issuer and its endpoints are http; the RP must refuse."""
    configure(DEVELOPMENT_MODE=False)
    with capture_logs() as logs:
        response = client.get(LOGIN_URL, secure=True)
    assert_refused(client, Attempt(response, logs), status=503, reason="not_configured")
    assert SESSION_PENDING_KEY not in client.session
    assert op.requests_log == []


def test_http_issuer_with_https_endpoints_refused_outside_development_mode(
    client, op, configure
):
    """DEVELOPMENT_MODE is off, the issuer is http, endpoints https; discovery must not happen."""
    configure(DEVELOPMENT_MODE=False)
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint",
                 "end_session_endpoint"):
        op.metadata[name] = op.metadata[name].replace("http://", "https://")
    with capture_logs() as logs:
        response = client.get(LOGIN_URL, secure=True)
    assert_refused(client, Attempt(response, logs), status=503, reason="not_configured")
    # Plain-http discovery could be rewritten in transit: it must not even be fetched.
    assert op.requests_log == []


@pytest.mark.parametrize(
    "name", ["authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"]
)
def test_http_endpoint_in_metadata_refused_outside_development_mode(configure, name):
    """An https issuer's metadata names a loopback http endpoint, DEVELOPMENT_MODE off; refuse."""
    configure(DEVELOPMENT_MODE=False)
    issuer = "https://idp.example.com"
    document = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "response_types_supported": ["code"],
    }
    assert sso_client.parse_metadata(document, expected_issuer=issuer).issuer == issuer
    document[name] = "http://127.0.0.1:8000/" + name
    with pytest.raises(ProviderMetadataError):
        sso_client.parse_metadata(document, expected_issuer=issuer)


def test_provider_error_access_denied(client, op):
    """The provider redirects back with error=access_denied; the RP must answer 403."""
    login = start(client)
    attempt = callback(client, op.callback_params(login.state, code=None, error="access_denied"))
    assert_refused(client, attempt, status=403, reason="access_denied")
    assert op.requests_to("/token") == []


def test_provider_error_unknown_is_not_echoed(client, op):
    """The provider sends an unknown error with markup; the RP must not echo it."""
    login = start(client)
    attempt = callback(
        client,
        op.callback_params(login.state, code=None, error="<script>x</script>"),
        secret_values=["<script>x</script>"],
    )
    assert_refused(client, attempt, status=403, reason="provider_error")


def test_provider_error_server_error_is_502(client, op):
    """The provider reports server_error; the RP must answer 502 (provider trouble)."""
    login = start(client)
    attempt = callback(client, op.callback_params(login.state, code=None, error="server_error"))
    assert_refused(client, attempt, status=502, reason="server_error")


# -- hostile or broken callbacks ------------------------------------------------


def test_callback_missing_state(client, op):
    """The callback has no state; the RP must refuse it with 400."""
    start(client)
    attempt = callback(client, op.callback_params(None))
    assert_refused(client, attempt, status=400, reason="state_missing")
    assert op.requests_to("/token") == []


def test_callback_state_10k_chars(client, op):
    """The callback's state is 10,000 characters; the RP must refuse it with 400."""
    start(client)
    attempt = callback(client, op.callback_params("s" * 10_000))
    assert_refused(client, attempt, status=400, reason="state_missing")


@pytest.mark.parametrize("value", ["état-ü-✓", "😀" * 10, "\ufeff", "a\u0301" * 20])
def test_callback_non_ascii_state(client, op, value):
    """The callback's state has non-ASCII characters; the RP must refuse with 400, never 500."""
    start(client)
    attempt = callback(client, op.callback_params(value))
    assert_refused(client, attempt, status=400, reason="state_missing")
    assert op.requests_to("/token") == []


@pytest.mark.parametrize("value", ["\u0000", "\r\nSet-Cookie: x=1", "' OR 1=1 --", "%00"])
def test_callback_odd_ascii_state(client, op, value):
    """The callback's state is control characters or injection text; the RP must refuse (400)."""
    start(client)
    attempt = callback(client, op.callback_params(value))
    assert_refused(client, attempt, status=400, reason="state_mismatch")
    assert "x=1" not in str(attempt.response.cookies)


def test_callback_without_pending_login(client, op):
    """A callback arrives in a browser that started no sign-in; the RP must refuse with 400."""
    attempt = callback(client, op.callback_params("x" * 43))
    assert_refused(client, attempt, status=400, reason="state_mismatch")
    assert op.requests_log == []


def test_callback_state_from_another_browser(client, op):
    """The state belongs to another browser's sign-in (login CSRF); the RP must refuse it."""
    other = Client(SERVER_NAME="localhost")
    login = start(other)
    attempt = callback(client, op.callback_params(login.state))
    assert_refused(client, attempt, status=400, reason="state_mismatch")


def test_callback_post_not_allowed(client, op):
    """The callback is POSTed (form_post is not used); the RP must answer 405."""
    login = start(client)
    response = client.post(CALLBACK_URL, op.callback_params(login.state))
    assert response.status_code == 405
    assert "_auth_user_id" not in client.session


def test_callback_missing_code(client, op):
    """The callback has a valid state but no code; the RP must refuse with 400."""
    login = start(client)
    attempt = callback(client, op.callback_params(login.state, code=None))
    assert_refused(client, attempt, status=400, reason="code_missing")


def test_callback_oversized_code(client, op):
    """The callback's code is 5,000 characters; the RP must refuse it before the token call."""
    login = start(client)
    attempt = callback(client, op.callback_params(login.state, code="c" * 5000))
    assert_refused(client, attempt, status=400, reason="code_missing")
    assert op.requests_to("/token") == []


def test_callback_expired_pending_login(client, op):
    """The pending sign-in is older than PENDING_LOGIN_TTL; the RP must refuse with 400."""
    login = start(client)
    session = client.session
    entries = session[SESSION_PENDING_KEY]
    entries[0]["created_at"] -= 601
    session[SESSION_PENDING_KEY] = entries
    session.save()
    attempt = callback(client, op.callback_params(login.state))
    assert_refused(client, attempt, status=400, reason="state_expired")
    assert op.requests_to("/token") == []


def test_callback_expired_by_tiny_ttl(client, op, configure):
    """PENDING_LOGIN_TTL is one second and the callback comes later; the RP must refuse it."""
    configure(PENDING_LOGIN_TTL=1)
    login = start(client)
    time.sleep(1.1)
    attempt = callback(client, op.callback_params(login.state))
    assert_refused(client, attempt, status=400, reason="state_expired")


def test_callback_replayed(client, op):
    """A successful callback is replayed; the RP must refuse the second one (single use)."""
    attempt = sign_in(client, op)
    assert_accepted(client, attempt)
    replay = callback(client, op.callback_params(attempt.login.state))
    assert replay.response.status_code == 400
    assert [f["reason"] for f in replay.events(FAILURE_EVENT)] == ["state_mismatch"]
    assert len(op.requests_to("/token")) == 1


def test_failed_callback_burns_the_state(client, op):
    """A callback refused for a bad ID token cannot be retried with the same state."""
    attempt = sign_in(client, op, lambda n: op.id_token({"iss": "x"}, nonce=n))
    assert_id_token_refused(client, op, attempt, "id_token_iss_invalid")
    op.token_body = op.token_response_for(op.id_token(nonce=attempt.login.nonce))
    retry = callback(client, op.callback_params(attempt.login.state))
    assert_refused(client, retry, status=400, reason="state_mismatch")


def test_two_tabs_first_completes(client, op):
    """Two sign-ins started in two tabs; completing the first one must work."""
    first, second = start(client), start(client)
    op.token_body = op.token_response_for(op.id_token(nonce=first.nonce))
    attempt = callback(client, op.callback_params(first.state))
    assert_accepted(client, attempt)
    # The second tab is still pending and also completes (after the session key rotated).
    op.token_body = op.token_response_for(op.id_token(nonce=second.nonce))
    assert_accepted(client, callback(client, op.callback_params(second.state)))


def test_more_tabs_than_max_pending_drops_the_oldest(client, op, configure):
    """More sign-ins than MAX_PENDING_LOGINS; the oldest is forgotten, the rest still work."""
    configure(MAX_PENDING_LOGINS=3)
    logins = [start(client) for _ in range(4)]
    assert len(client.session[SESSION_PENDING_KEY]) == 3
    attempt = callback(client, op.callback_params(logins[0].state))
    assert_refused(client, attempt, status=400, reason="state_mismatch")
    op.token_body = op.token_response_for(op.id_token(nonce=logins[1].nonce))
    assert_accepted(client, callback(client, op.callback_params(logins[1].state)))


def test_next_url_is_kept_only_when_same_site(client, op):
    """A same-site next survives the sign-in and an off-site one is replaced by the default."""
    login = start(client, next_url="/dashboard/?tab=2")
    op.token_body = op.token_response_for(op.id_token(nonce=login.nonce))
    assert_accepted(
        client, callback(client, op.callback_params(login.state)), location="/dashboard/?tab=2"
    )
    client.logout()
    login = start(client, next_url="https://evil.example/")
    op.token_body = op.token_response_for(op.id_token(nonce=login.nonce))
    assert_accepted(client, callback(client, op.callback_params(login.state)))


# -- properties ------------------------------------------------------------------

_PROPERTY_SETTINGS = hypothesis_settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    max_examples=50,
    deadline=None,
)


@_PROPERTY_SETTINGS
@given(params=st.dictionaries(st.text(max_size=20), st.text(max_size=200), max_size=6))
def test_arbitrary_callback_query_is_4xx(client, op, params):
    """Any query string at the callback, with a pending sign-in, gives a 4xx and never a 500."""
    start(client)
    with capture_logs():
        response = client.get(CALLBACK_URL, params)
    assert 400 <= response.status_code < 500, (params, response.status_code)
    assert "_auth_user_id" not in client.session


@_PROPERTY_SETTINGS
@given(raw=st.binary(max_size=300))
def test_arbitrary_raw_query_bytes_are_4xx(client, op, raw):
    """Any percent-encoded bytes (invalid UTF-8 included) as the query give a 4xx, never 500."""
    start(client)
    with capture_logs():
        response = client.get(CALLBACK_URL + "?" + quote_from_bytes(raw, safe="=&"))
    assert 400 <= response.status_code < 500, (raw, response.status_code)


@_PROPERTY_SETTINGS
@given(extra=st.dictionaries(st.text(max_size=12), st.text(max_size=100), max_size=5))
def test_arbitrary_params_beside_a_real_state_never_500(client, op, extra):
    """Arbitrary parameters next to a genuine state are refused with 4xx (502 for server_error)."""
    op.token_body = None
    login = start(client)
    params = {"iss": op.issuer, "code": "forged-code", **extra, "state": login.state}
    with capture_logs():
        response = client.get(CALLBACK_URL, params)
    status = response.status_code
    provider_trouble = params.get("error") in {"server_error", "temporarily_unavailable"}
    assert 400 <= status < 500 or (status == 502 and provider_trouble), (params, status)
    assert "_auth_user_id" not in client.session
