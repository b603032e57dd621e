"""Pure ID-token verification: signature, algorithm, and every claim OpenID Connect Core requires.

No request, no ORM, no network: the caller passes the key set it fetched and the
values it expects, so tests and the hypothesis properties can drive this module
directly, and :func:`verify_id_token_at_time` makes the clock a parameter.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from secure_sso.exceptions import InvalidIDToken

#: Largest ID token accepted, a cheap bound before any parsing.
MAX_TOKEN_LENGTH = 16_384


def _fail(code: str, detail: str) -> InvalidIDToken:
    return InvalidIDToken(detail, code=code)


def _string_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise _fail(f"id_token_{name}_invalid", f"'{name}' missing or not a string")
    return value


def _numeric_claim(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"id_token_{name}_invalid", f"'{name}' missing or not a number")
    return int(value)


def verify_signature(
    token: str,
    key_set: KeySet,
    algorithms: Iterable[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the JWS and return ``(header, claims)``.

    Raises:
        InvalidIDToken: with ``code`` ``id_token_unknown_kid`` when no key matches the
            header's ``kid`` (the caller may refresh its JWKS once), otherwise
            ``id_token_signature_invalid``.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise _fail("id_token_malformed", "missing, empty or oversized id_token")
    if token.count(".") != 2:
        raise _fail("id_token_malformed", "id_token is not a compact JWS")
    # SECURITY: the algorithm allow-list is the relying party's pin, never the
    # provider's metadata; the registry refuses `none` and anything else unlisted.
    registry = JWSRegistry(algorithms=list(algorithms))
    try:
        decoded = jwt.decode(token, key_set, registry=registry)
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
    nonce: str,
    now: float,
    leeway: int = 60,
    max_age: int = 600,
) -> None:
    """Check ``iss``, ``aud``, ``azp``, ``exp``, ``iat``, ``sub`` and ``nonce`` at ``now``.

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
    nonce: str,
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
