"""Pure ID-token verification: signature, algorithm, and every claim OpenID Connect Core requires.

No request, no ORM, no network: the caller passes the key set it fetched and the
values it expects, so tests and the hypothesis properties can drive this module
directly, and :func:`verify_id_token_at_time` makes the clock a parameter.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from secure_sso.conf import ALLOWED_ALGORITHMS
from secure_sso.exceptions import InvalidIDToken

#: Largest ID token accepted, a cheap bound before any parsing.
MAX_TOKEN_LENGTH = 16_384
#: Timestamps beyond the year 9999 are malformed, not merely far away.
MAX_TIMESTAMP = 253_402_300_799


def _fail(code: str, detail: str) -> InvalidIDToken:
    return InvalidIDToken(detail, code=code)


def _string_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise _fail(f"id_token_{name}_invalid", f"'{name}' missing or not a string")
    return value


def timestamp(value: Any) -> int | None:
    """A JWT NumericDate as seconds, or ``None`` when ``value`` is not a usable one.

    JSON parsers accept Infinity, NaN and integers of any size; all three are refused here
    rather than left for ``int()`` or float arithmetic to raise later.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
        or abs(value) > MAX_TIMESTAMP
    ):
        return None
    return int(value)


def _numeric_claim(claims: Mapping[str, Any], name: str) -> int:
    value = timestamp(claims.get(name))
    if value is None:
        raise _fail(f"id_token_{name}_invalid", f"'{name}' missing or not a number")
    return value


#: Key type (and curve) each pinnable algorithm needs, to pick a key when ``kid`` is absent.
_ALG_KEYS: dict[str, tuple[str, frozenset[str] | None]] = {
    **{f"{f}{n}": ("RSA", None) for f in ("RS", "PS") for n in (256, 384, 512)},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}


def _key_resolver(key_set: KeySet) -> Callable[[Any], Any]:
    """joserfc key callback: by ``kid`` when the header has one, else the only fitting key.

    OpenID Connect Core 10.1 lets a provider omit ``kid`` when its JWKS holds one key
    usable for the algorithm (other key types may sit beside it); with several
    candidates the choice is ambiguous and the token is refused.
    """

    def resolve(obj: Any) -> Any:
        header = obj.headers()
        if header.get("kid"):
            return key_set
        kty, curves = _ALG_KEYS.get(str(header.get("alg")), ("", None))
        candidates = [
            key
            for key in key_set.keys
            if key.key_type == kty
            and (curves is None or key.get("crv") in curves)
            and key.get("alg") in (None, header.get("alg"))
        ]
        if len(candidates) > 1:
            raise _fail("id_token_kid_ambiguous", "no kid and several candidate keys")
        if not candidates:
            raise InvalidKeyIdError("no key fits the algorithm")
        return candidates[0]

    return resolve


def verify_signature(
    token: str,
    key_set: KeySet,
    algorithms: Iterable[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the JWS and return ``(header, claims)``.

    Raises:
        InvalidIDToken: with ``code`` ``id_token_unknown_kid`` when no key matches the
            header's ``kid`` (the caller may refresh its JWKS once),
            ``id_token_kid_ambiguous`` when the header has no ``kid`` and several keys
            fit its algorithm, otherwise ``id_token_signature_invalid``.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise _fail("id_token_malformed", "missing, empty or oversized id_token")
    if token.count(".") != 2:
        raise _fail("id_token_malformed", "id_token is not a compact JWS")
    # SECURITY: the algorithm allow-list is the relying party's pin, never the
    # provider's metadata; the registry refuses `none` and anything else unlisted.
    # `none` and HS* are dropped even if they slipped into the settings: system
    # checks do not run under WSGI.
    algorithms = [a for a in algorithms if a in ALLOWED_ALGORITHMS]
    if not algorithms:
        raise _fail("id_token_signature_invalid", "no allowed algorithm pinned")
    registry = JWSRegistry(algorithms=algorithms)
    try:
        decoded = jwt.decode(token, _key_resolver(key_set), registry=registry)
    except JoseError as exc:
        code = (
            "id_token_unknown_kid"
            if isinstance(exc, InvalidKeyIdError)
            else "id_token_signature_invalid"
        )
        raise _fail(code, exc.__class__.__name__) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise _fail("id_token_malformed", exc.__class__.__name__) from None
    header = dict(decoded.header)
    claims = dict(decoded.claims)
    if header.get("alg") not in set(algorithms):
        raise _fail("id_token_signature_invalid", "alg not pinned")
    return header, claims


def check_claims_at_time(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    nonce: str | None,
    now: float,
    leeway: int = 60,
    max_age: int = 600,
) -> None:
    """Check ``iss``, ``aud``, ``azp``, ``exp``, ``iat``, ``sub`` and ``nonce`` at ``now``.

    ``nonce=None`` is for ID tokens from a refresh (OpenID Connect Core 12.2), which
    answer no authentication request and carry no nonce to compare.

    Raises:
        InvalidIDToken: the first check that fails names itself in ``code``.
    """
    # SECURITY: exact string comparison, as OpenID Connect Core 3.1.3.7 requires.
    if claims.get("iss") != issuer:
        raise _fail("id_token_iss_invalid", "issuer mismatch")

    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if (
        not isinstance(audiences, list)
        or not audiences
        or not all(isinstance(a, str) for a in audiences)
        or client_id not in audiences
    ):
        raise _fail("id_token_aud_invalid", "audience does not contain client_id")
    azp = claims.get("azp")
    if azp is not None and azp != client_id:
        raise _fail("id_token_azp_invalid", "azp is not client_id")
    if len(audiences) > 1 and azp is None:
        raise _fail("id_token_azp_invalid", "several audiences and no azp")

    _string_claim(claims, "sub")
    if len(claims["sub"]) > 255:
        raise _fail("id_token_sub_invalid", "sub longer than 255 characters")

    exp = _numeric_claim(claims, "exp")
    if now > exp + leeway:
        raise _fail("id_token_expired", "exp in the past")
    iat = _numeric_claim(claims, "iat")
    if iat > now + leeway:
        raise _fail("id_token_iat_invalid", "iat in the future")
    if now - iat > max_age + leeway:
        raise _fail("id_token_iat_invalid", "iat too old")
    if "nbf" in claims and _numeric_claim(claims, "nbf") > now + leeway:
        raise _fail("id_token_nbf_invalid", "nbf in the future")

    if nonce is None:
        return
    token_nonce = claims.get("nonce")
    # SECURITY: constant-time compare; a missing nonce fails like a wrong one.
    if not isinstance(token_nonce, str) or not hmac.compare_digest(
        token_nonce.encode("utf-8", "surrogatepass"), nonce.encode("utf-8", "surrogatepass")
    ):
        raise _fail("id_token_nonce_invalid", "nonce mismatch")


def verify_id_token_at_time(
    token: str,
    *,
    get_key_set: Callable[[bool], KeySet],
    algorithms: Iterable[str],
    issuer: str,
    client_id: str,
    nonce: str | None,
    now: float,
    leeway: int = 60,
    max_age: int = 600,
) -> dict[str, Any]:
    """Verify an ID token completely and return its claims.

    ``get_key_set(force_refresh)`` supplies the provider's keys; it is asked again
    with ``True`` once when the token names a key the cached set lacks (key rotation).

    Raises:
        InvalidIDToken: for any failure; ``code`` says which check.
    """
    algorithms = tuple(algorithms)
    try:
        _header, claims = verify_signature(token, get_key_set(False), algorithms)
    except InvalidIDToken as exc:
        if exc.code != "id_token_unknown_kid":
            raise
        _header, claims = verify_signature(token, get_key_set(True), algorithms)
    check_claims_at_time(
        claims,
        issuer=issuer,
        client_id=client_id,
        nonce=nonce,
        now=now,
        leeway=leeway,
        max_age=max_age,
    )
    return claims


def verify_id_token(token: str, **kwargs: Any) -> dict[str, Any]:
    """:func:`verify_id_token_at_time` at the current time."""
    return verify_id_token_at_time(token, now=time.time(), **kwargs)
