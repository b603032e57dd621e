"""ID-token verification: signature, pinned algorithms and every required claim check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey
from joserfc.jws import JWSRegistry

from secure_sso.exceptions import InvalidIDToken
from secure_sso.id_token import (
    MAX_TOKEN_LENGTH,
    check_claims_at_time,
    verify_id_token_at_time,
)
from tests.strategies import any_text_token, claim_dicts, json_values

ISSUER = "https://op.test"
CLIENT_ID = "client-1"
NONCE = "nonce-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
NOW = 1_700_000_000
LEEWAY = 60
MAX_AGE = 600

# Keys are generated once per module: RSA key generation is slow.
SIGNING_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
ROTATED_KEY = RSAKey.generate_key(2048, parameters={"kid": "k2"}, private=True)
IMPOSTOR_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "e1"}, private=True)


def public_set(*keys: Any) -> KeySet:
    return KeySet([k.__class__.import_key(k.as_dict(private=False)) for k in keys])


def b64url(data: bytes | dict) -> str:
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def valid_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": CLIENT_ID,
        "iat": NOW,
        "exp": NOW + 300,
        "nonce": NONCE,
    }
    for name, value in overrides.items():
        if value is DROP:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


DROP = object()


def sign(
    claims: dict[str, Any],
    *,
    key: Any = SIGNING_KEY,
    alg: str = "RS256",
    header: dict[str, Any] | None = None,
) -> str:
    """A compact JWS assembled by hand so the header may lie."""
    head: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if getattr(key, "kid", None):
        head["kid"] = key.kid
    head.update(header or {})
    signing_input = f"{b64url(head)}.{b64url(claims)}"
    if alg == "none":
        return signing_input + "."
    if isinstance(key, str | bytes):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            key = OctKey.import_key(key)
    signature = JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64url(signature)}"


class KeySource:
    """A ``get_key_set`` callable that records calls and can rotate on refresh."""

    def __init__(self, cached: KeySet, refreshed: KeySet | None = None) -> None:
        self.cached = cached
        self.refreshed = refreshed if refreshed is not None else cached
        self.calls: list[bool] = []

    def __call__(self, force_refresh: bool) -> KeySet:
        self.calls.append(force_refresh)
        return self.refreshed if force_refresh else self.cached


def verify(token: Any, *, get_key_set: Callable[[bool], KeySet] | None = None,
           algorithms: tuple[str, ...] = ("RS256",), now: float = NOW,
           nonce: str = NONCE) -> dict[str, Any]:
    return verify_id_token_at_time(
        token,
        get_key_set=get_key_set or KeySource(public_set(SIGNING_KEY)),
        algorithms=algorithms,
        issuer=ISSUER,
        client_id=CLIENT_ID,
        nonce=nonce,
        now=now,
        leeway=LEEWAY,
        max_age=MAX_AGE,
    )


def rejected(token: Any, **kwargs: Any) -> str:
    """The code of the InvalidIDToken that verifying ``token`` raises."""
    with pytest.raises(InvalidIDToken) as info:
        verify(token, **kwargs)
    return info.value.code


def claims_rejected(claims: dict[str, Any], now: float = NOW) -> str:
    with pytest.raises(InvalidIDToken) as info:
        check_claims_at_time(claims, issuer=ISSUER, client_id=CLIENT_ID, nonce=NONCE, now=now,
                             leeway=LEEWAY, max_age=MAX_AGE)
    return info.value.code


VALID_TOKEN = sign(valid_claims())


class TestValidTokens:
    def test_valid_token_accepted(self) -> None:
        """A correctly signed token with correct claims returns its claims."""
        assert verify(VALID_TOKEN) == valid_claims()

    def test_key_set_fetched_once_without_refresh(self) -> None:
        """A known kid needs no JWKS refresh."""
        source = KeySource(public_set(SIGNING_KEY))
        verify(VALID_TOKEN, get_key_set=source)
        assert source.calls == [False]

    def test_token_without_kid_and_single_key(self) -> None:
        """A token without kid verifies against a one-key set."""
        raw = {k: v for k, v in SIGNING_KEY.as_dict(private=True).items() if k != "kid"}
        token = sign(valid_claims(), key=RSAKey.import_key(raw))
        assert "kid" not in json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        assert verify(token)["sub"] == "user-1"

    def test_list_audience_with_azp_accepted(self) -> None:
        """Several audiences are fine when azp names this client."""
        token = sign(valid_claims(aud=[CLIENT_ID, "other"], azp=CLIENT_ID))
        assert verify(token)["azp"] == CLIENT_ID

    def test_single_element_list_audience_accepted(self) -> None:
        """A one-element audience list containing the client needs no azp."""
        assert verify(sign(valid_claims(aud=[CLIENT_ID])))["aud"] == [CLIENT_ID]

    def test_exp_within_leeway_accepted(self) -> None:
        """A token expired by less than the leeway is still accepted."""
        assert verify(sign(valid_claims(exp=NOW - LEEWAY + 1)))

    def test_iat_slightly_future_within_leeway_accepted(self) -> None:
        """Clock skew within the leeway is tolerated for iat."""
        assert verify(sign(valid_claims(iat=NOW + LEEWAY - 1)))

    def test_nbf_past_accepted(self) -> None:
        """An nbf in the past is fine."""
        assert verify(sign(valid_claims(nbf=NOW - 10)))

    def test_pinned_ec_algorithm_accepted(self) -> None:
        """An algorithm that is pinned, with a matching key, verifies."""
        token = sign(valid_claims(), key=EC_KEY, alg="ES256")
        source = KeySource(public_set(EC_KEY))
        assert verify(token, get_key_set=source, algorithms=("ES256",))["sub"] == "user-1"


class TestIssuerAudience:
    @pytest.mark.parametrize("iss", ["https://evil.test", ISSUER + "/", "https://OP.test",
                                     "http://op.test", "", None, [ISSUER], DROP])
    def test_wrong_issuer(self, iss: Any) -> None:
        """Any issuer that is not exactly the configured one is refused."""
        assert rejected(sign(valid_claims(iss=iss))) == "id_token_iss_invalid"

    def test_trailing_slash_difference_both_ways(self) -> None:
        """Issuer comparison is exact: a trailing slash on either side mismatches."""
        token = sign(valid_claims(iss=ISSUER))
        with pytest.raises(InvalidIDToken) as info:
            verify_id_token_at_time(
                token, get_key_set=KeySource(public_set(SIGNING_KEY)), algorithms=["RS256"],
                issuer=ISSUER + "/", client_id=CLIENT_ID, nonce=NONCE, now=NOW,
            )
        assert info.value.code == "id_token_iss_invalid"

    @pytest.mark.parametrize("aud", [DROP, "other", ["other"], ["other", "third"], [], None, 5,
                                     [CLIENT_ID, 5], CLIENT_ID.upper(), {"aud": CLIENT_ID}])
    def test_wrong_audience(self, aud: Any) -> None:
        """A missing audience or one without this client is refused."""
        assert rejected(sign(valid_claims(aud=aud))) == "id_token_aud_invalid"

    def test_several_audiences_without_azp(self) -> None:
        """Several audiences including the client but no azp are refused."""
        token = sign(valid_claims(aud=[CLIENT_ID, "other"]))
        assert rejected(token) == "id_token_azp_invalid"

    @pytest.mark.parametrize("azp", ["other", "", 5, [CLIENT_ID]])
    def test_azp_other_client(self, azp: Any) -> None:
        """An azp naming anything but this client is refused."""
        assert rejected(sign(valid_claims(azp=azp))) == "id_token_azp_invalid"
        token = sign(valid_claims(aud=[CLIENT_ID, "other"], azp=azp))
        assert rejected(token) == "id_token_azp_invalid"


class TestSubject:
    @pytest.mark.parametrize("sub", [DROP, "", None, 42, ["user-1"], {"id": 1}, True])
    def test_missing_empty_or_non_string(self, sub: Any) -> None:
        """sub must be a non-empty string."""
        assert rejected(sign(valid_claims(sub=sub))) == "id_token_sub_invalid"

    def test_too_long(self) -> None:
        """A sub over 255 characters is refused; 255 is accepted."""
        assert rejected(sign(valid_claims(sub="s" * 256))) == "id_token_sub_invalid"
        assert verify(sign(valid_claims(sub="s" * 255)))["sub"] == "s" * 255


class TestTimes:
    def test_expired_beyond_leeway(self) -> None:
        """A token expired longer ago than the leeway is refused."""
        assert rejected(sign(valid_claims(exp=NOW - LEEWAY - 1))) == "id_token_expired"

    @pytest.mark.parametrize("exp", [DROP, None, "9999999999", True, [NOW + 300]])
    def test_exp_missing_or_not_number(self, exp: Any) -> None:
        """exp must be a number."""
        assert rejected(sign(valid_claims(exp=exp))) == "id_token_exp_invalid"

    def test_iat_in_future(self) -> None:
        """An iat beyond the leeway in the future is refused."""
        assert rejected(sign(valid_claims(iat=NOW + LEEWAY + 1))) == "id_token_iat_invalid"

    def test_iat_too_old(self) -> None:
        """A token issued longer ago than max_age plus leeway is refused."""
        token = sign(valid_claims(iat=NOW - MAX_AGE - LEEWAY - 1, exp=NOW + 300))
        assert rejected(token) == "id_token_iat_invalid"

    def test_iat_at_max_age_accepted(self) -> None:
        """A token exactly at max_age plus leeway is still accepted."""
        assert verify(sign(valid_claims(iat=NOW - MAX_AGE - LEEWAY, exp=NOW + 300)))

    @pytest.mark.parametrize("iat", [DROP, None, "1700000000", False])
    def test_iat_missing_or_not_number(self, iat: Any) -> None:
        """iat must be a number."""
        assert rejected(sign(valid_claims(iat=iat))) == "id_token_iat_invalid"

    def test_nbf_in_future(self) -> None:
        """An nbf beyond the leeway in the future is refused."""
        assert rejected(sign(valid_claims(nbf=NOW + LEEWAY + 1))) == "id_token_nbf_invalid"

    @pytest.mark.parametrize("nbf", [None, "0", True])
    def test_nbf_not_number(self, nbf: Any) -> None:
        """A present nbf must be a number."""
        assert rejected(sign(valid_claims(nbf=nbf))) == "id_token_nbf_invalid"


class TestNonce:
    @pytest.mark.parametrize("nonce", [DROP, "", "wrong", NONCE + "x", NONCE[:-1], None, 5,
                                       [NONCE], NONCE.upper()])
    def test_missing_or_wrong(self, nonce: Any) -> None:
        """The nonce must equal the one sent with the authorization request."""
        assert rejected(sign(valid_claims(nonce=nonce))) == "id_token_nonce_invalid"

    def test_non_ascii_nonce_refused_cleanly(self) -> None:
        """A non-ASCII nonce in the token is refused, not a crash."""
        assert rejected(sign(valid_claims(nonce="nonce-é"))) == "id_token_nonce_invalid"


class TestSignature:
    def test_alg_none(self) -> None:
        """An unsigned token is refused, even if 'none' is all the header says."""
        token = sign(valid_claims(), alg="none")
        assert rejected(token) == "id_token_signature_invalid"

    @pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")
    def test_alg_none_even_if_misconfigured(self) -> None:
        """An unsigned token is refused even if 'none' slipped into the pinned algorithms."""
        token = sign(valid_claims(), alg="none")
        assert rejected(token, algorithms=("RS256", "none")) == "id_token_signature_invalid"
        assert rejected(token, algorithms=("none",)) == "id_token_signature_invalid"

    def test_hs256_even_if_misconfigured(self) -> None:
        """HMAC tokens are refused even with HS256 in the pin and an oct key in the JWKS."""
        secret = b"s" * 32
        token = sign(valid_claims(), key=secret, alg="HS256", header={"kid": "o1"})
        oct_key = OctKey.import_key(secret, parameters={"kid": "o1"})
        source = KeySource(KeySet([oct_key, *public_set(SIGNING_KEY).keys]))
        code = rejected(token, get_key_set=source, algorithms=("RS256", "HS256"))
        assert code == "id_token_signature_invalid"

    @pytest.mark.parametrize("alg_spelling", ["None", "NONE", "nOnE"])
    def test_alg_none_spellings(self, alg_spelling: str) -> None:
        """Case variants of 'none' are refused too."""
        token = sign(valid_claims(), alg="none", header={"alg": alg_spelling})
        assert rejected(token) == "id_token_signature_invalid"

    @pytest.mark.parametrize("secret", ["test-secret", "", "k1", b"\x00" * 32])
    def test_hs256_with_any_secret(self, secret: str | bytes) -> None:
        """HMAC-signed tokens are refused whatever the secret."""
        token = sign(valid_claims(), key=secret or "x", alg="HS256", header={"kid": "k1"})
        assert rejected(token) == "id_token_signature_invalid"

    def test_hs256_with_public_key_as_secret(self) -> None:
        """The classic key-confusion attack (public key bytes as HMAC secret) fails."""
        pem = SIGNING_KEY.as_pem(private=False)
        signing_input = f"{b64url({'alg': 'HS256', 'kid': 'k1'})}.{b64url(valid_claims())}"
        mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{b64url(mac)}"
        assert rejected(token) == "id_token_signature_invalid"
        assert rejected(token, algorithms=("RS256", "HS256")) == "id_token_signature_invalid"

    def test_alg_not_pinned(self) -> None:
        """A good RS384 signature is refused when only RS256 is pinned."""
        token = sign(valid_claims(), alg="RS384")
        assert rejected(token) == "id_token_signature_invalid"
        assert verify(token, algorithms=("RS384",))["sub"] == "user-1"

    def test_header_lies_about_alg(self) -> None:
        """An RS384 signature under a header claiming RS256 does not verify."""
        signing_input = VALID_TOKEN.rsplit(".", 1)[0]
        sig = JWSRegistry.algorithms["RS384"].sign(signing_input.encode(), SIGNING_KEY)
        assert rejected(f"{signing_input}.{b64url(sig)}") == "id_token_signature_invalid"

    def test_signed_by_other_key_with_same_kid(self) -> None:
        """A token signed by a different key that reuses the kid is refused."""
        token = sign(valid_claims(), key=IMPOSTOR_KEY)
        assert rejected(token) == "id_token_signature_invalid"

    def test_tampered_payload(self) -> None:
        """Changing the payload (here: the sub) breaks the signature."""
        head, _payload, sig = VALID_TOKEN.split(".")
        forged = f"{head}.{b64url(valid_claims(sub='admin'))}.{sig}"
        assert rejected(forged) == "id_token_signature_invalid"

    def test_tampered_signature(self) -> None:
        """Changing the signature's first character breaks it."""
        head, payload, sig = VALID_TOKEN.split(".")
        forged = f"{head}.{payload}.{'B' if sig[0] != 'B' else 'C'}{sig[1:]}"
        assert rejected(forged) == "id_token_signature_invalid"

    def test_signature_stripped(self) -> None:
        """A token with its signature removed is refused."""
        head, payload, _sig = VALID_TOKEN.split(".")
        assert rejected(f"{head}.{payload}.") == "id_token_signature_invalid"


class TestKeyRotation:
    def test_unknown_kid_then_refreshed_set(self) -> None:
        """An unknown kid triggers exactly one refresh, and the refreshed key verifies."""
        token = sign(valid_claims(), key=ROTATED_KEY)
        source = KeySource(public_set(SIGNING_KEY), public_set(SIGNING_KEY, ROTATED_KEY))
        assert verify(token, get_key_set=source)["sub"] == "user-1"
        assert source.calls == [False, True]

    def test_unknown_kid_refresh_does_not_help(self) -> None:
        """If the refreshed set still lacks the kid, the token is refused after one refresh."""
        token = sign(valid_claims(), key=ROTATED_KEY)
        source = KeySource(public_set(SIGNING_KEY))
        assert rejected(token, get_key_set=source) == "id_token_unknown_kid"
        assert source.calls == [False, True]

    def test_bad_signature_does_not_refresh(self) -> None:
        """A bad signature with a known kid does not trigger a JWKS refresh."""
        token = sign(valid_claims(), key=IMPOSTOR_KEY)
        source = KeySource(public_set(SIGNING_KEY))
        rejected(token, get_key_set=source)
        assert source.calls == [False]


class TestMalformed:
    def test_oversized(self) -> None:
        """A token longer than MAX_TOKEN_LENGTH is refused before parsing."""
        token = sign(valid_claims(padding="x" * MAX_TOKEN_LENGTH))
        assert rejected(token) == "id_token_malformed"

    @pytest.mark.parametrize("token", ["abc", "a.b", "a.b.c.d", VALID_TOKEN + ".x", "....",
                                       VALID_TOKEN.replace(".", "", 1)])
    def test_not_three_segments(self, token: str) -> None:
        """Anything but three dot-separated segments is malformed."""
        assert rejected(token) == "id_token_malformed"

    @pytest.mark.parametrize("token", [None, "", 42, b"a.b.c", ["a", "b", "c"]])
    def test_missing_or_not_a_string(self, token: Any) -> None:
        """A missing, empty or non-string token is malformed."""
        assert rejected(token) == "id_token_malformed"

    @pytest.mark.parametrize("token", ["a.b.c", "!!.??.**", "é.é.é", "..", "e30.e30.",
                                       b64url(b"not json") + ".e30.AAAA"])
    def test_garbage(self, token: str) -> None:
        """Garbage with three segments is refused with an InvalidIDToken."""
        assert rejected(token).startswith("id_token_")

    def test_payload_not_json_object(self) -> None:
        """A signed payload that is not a JSON object is refused."""
        head = b64url({"alg": "RS256", "kid": "k1"})
        signing_input = f"{head}.{b64url(b'[1, 2, 3]')}"
        sig = JWSRegistry.algorithms["RS256"].sign(signing_input.encode(), SIGNING_KEY)
        assert rejected(f"{signing_input}.{b64url(sig)}").startswith("id_token_")


_B64_ALPHABET = string.ascii_letters + string.digits + "-_"

#: Near-miss values for each claim check; mixed with arbitrary JSON by the property.
PERTURBATIONS: dict[str, st.SearchStrategy[Any]] = {
    "iss": st.sampled_from([ISSUER, ISSUER + "/", ISSUER.upper(), "https://evil.test"]),
    "aud": st.sampled_from([CLIENT_ID, [CLIENT_ID], [CLIENT_ID, "x"], ["x"], "x", []]),
    "azp": st.sampled_from([CLIENT_ID, "x", None]),
    "sub": st.text(max_size=5) | st.text(min_size=250, max_size=260),
    "exp": st.integers(NOW - 200, NOW + 200) | st.floats(NOW - 200, NOW + 200),
    "iat": st.integers(NOW - 800, NOW + 200),
    "nbf": st.integers(NOW - 200, NOW + 200),
    "nonce": st.sampled_from([NONCE, NONCE + "x", "", NONCE.upper()]),
}


class TestProperties:
    @settings(max_examples=150, deadline=None)
    @given(st.data())
    def test_any_single_character_change_rejected(self, data: st.DataObject) -> None:
        """Changing any one character of the payload or signature is always an InvalidIDToken."""
        head, payload, sig = VALID_TOKEN.split(".")
        segment = data.draw(st.sampled_from(["payload", "signature"]))
        text = payload if segment == "payload" else sig
        index = data.draw(st.integers(0, len(text) - 1))
        replacement = data.draw(
            st.one_of(st.sampled_from(_B64_ALPHABET), st.characters(codec="utf-8"))
            .filter(lambda c: c != text[index])
        )
        changed = text[:index] + replacement + text[index + 1:]
        token = f"{head}.{changed}.{sig}" if segment == "payload" else f"{head}.{payload}.{changed}"
        with pytest.raises(InvalidIDToken):
            verify(token)

    @settings(max_examples=200, deadline=None)
    @given(any_text_token())
    def test_arbitrary_tokens_only_invalid_id_token(self, token: Any) -> None:
        """Arbitrary text or JWT-shaped input only ever raises InvalidIDToken."""
        with pytest.raises(InvalidIDToken):
            verify(token)

    @settings(max_examples=300, deadline=None)
    @given(claim_dicts, st.data())
    def test_arbitrary_claims_checked(self, noise: dict, data: st.DataObject) -> None:
        """Arbitrary claims either raise InvalidIDToken or pass with iss, aud and nonce right."""
        claims = {**noise, **valid_claims()}
        # Replace a few required claims (sometimes none) with near-miss or arbitrary values.
        for name in data.draw(st.sets(st.sampled_from(sorted(PERTURBATIONS)), max_size=3)):
            claims[name] = data.draw(PERTURBATIONS[name] | json_values)
        try:
            check_claims_at_time(claims, issuer=ISSUER, client_id=CLIENT_ID, nonce=NONCE,
                                 now=NOW, leeway=LEEWAY, max_age=MAX_AGE)
        except InvalidIDToken as exc:
            assert exc.code.startswith("id_token_")
            event(exc.code)
            return
        event("accepted")
        assert claims["iss"] == ISSUER
        assert claims["aud"] == CLIENT_ID or CLIENT_ID in claims["aud"]
        assert claims["nonce"] == NONCE
        assert isinstance(claims["sub"], str) and 0 < len(claims["sub"]) <= 255
        assert claims.get("azp") in (None, CLIENT_ID)
        if isinstance(claims["aud"], list) and len(claims["aud"]) > 1:
            assert claims["azp"] == CLIENT_ID
        assert NOW <= claims["exp"] + LEEWAY

    @settings(max_examples=50, deadline=None)
    @given(st.sampled_from(["iss", "aud", "sub", "exp", "iat", "nonce"]))
    def test_each_required_claim_needed(self, name: str) -> None:
        """Dropping any one required claim makes the check fail."""
        assert claims_rejected(valid_claims(**{name: DROP})).startswith("id_token_")


class TestNonFiniteTimes:
    @pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 10**400, 1e300])
    @pytest.mark.parametrize("name", ["exp", "iat", "nbf"])
    def test_non_finite_or_huge_timestamps_refused(self, name: str, value: float) -> None:
        """Infinity, NaN and absurd numbers (JSON allows them) are refused, never a crash."""
        claims = {**valid_claims(), name: value}
        with pytest.raises(InvalidIDToken) as info:
            check_claims_at_time(claims, issuer=ISSUER, client_id=CLIENT_ID, nonce=NONCE,
                                 now=NOW, leeway=LEEWAY, max_age=MAX_AGE)
        assert info.value.code == f"id_token_{name}_invalid"
