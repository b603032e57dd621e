"""Pure back-channel logout token verification (OpenID Connect Back-Channel Logout 1.0, 2.6).

Like :mod:`secure_sso.id_token`, no request, ORM or network: the caller passes the
keys and the expected values, and :func:`verify_logout_token_at_time` takes the clock.
Single use of ``jti`` is the caller's (it needs the shared store).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import KeySet

from secure_sso.exceptions import InvalidIDToken, InvalidLogoutToken
from secure_sso.id_token import timestamp, verify_signature

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: ``typ`` headers a logout token may carry; another explicit type is another token.
ACCEPTED_TYPES = frozenset({"", "jwt", "logout+jwt", "application/logout+jwt"})
MAX_CLAIM_LENGTH = 255


@dataclass(frozen=True)
class LogoutRequest:
    """What a valid logout token asks: end the sessions of ``sid`` and/or ``sub``."""

    issuer: str
    subject: str | None
    sid: str | None
    jti: str
    iat: int


def _fail(code: str, detail: str) -> InvalidLogoutToken:
    return InvalidLogoutToken(detail, code=f"logout_token_{code}")


def _optional_string(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_LENGTH:
        raise _fail(f"{name}_invalid", f"'{name}' is not a non-empty string")
    return value


def _timestamp(claims: Mapping[str, Any], name: str) -> int:
    value = timestamp(claims.get(name))
    if value is None:
        raise _fail(f"{name}_invalid", f"'{name}' missing or not a number")
    return value


def check_logout_claims_at_time(
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    now: float,
    leeway: int = 60,
    max_age: int = 120,
) -> LogoutRequest:
    """Every claim check of section 2.6, in the spec's order; returns what to end.

    Raises:
        InvalidLogoutToken: ``code`` names the failed check (``logout_token_iss_invalid``,
            ``..._aud_invalid``, ``..._iat_invalid``, ``..._expired``, ``..._events_invalid``,
            ``..._nonce_present``, ``..._sid_sub_missing``, ``..._jti_invalid``,
            ``..._typ_invalid``).
    """
    typ = header.get("typ", "")
    if not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYPES:
        raise _fail("typ_invalid", "typ names another kind of token")
    if claims.get("iss") != issuer:
        raise _fail("iss_invalid", "issuer mismatch")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if (
        not isinstance(audiences, list)
        or not all(isinstance(a, str) for a in audiences)
        or client_id not in audiences
    ):
        raise _fail("aud_invalid", "audience does not contain client_id")
    iat = _timestamp(claims, "iat")
    # SECURITY: a fresh token only: with jti kept for max_age, an older one could replay.
    if iat > now + leeway or now - iat > max_age + leeway:
        raise _fail("iat_invalid", "iat outside the accepted window")
    if _timestamp(claims, "exp") + leeway < now:
        raise _fail("expired", "exp in the past")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise _fail("events_invalid", "no back-channel logout event")
    # SECURITY: an ID token (which has a nonce) must never be usable as a logout token.
    if "nonce" in claims:
        raise _fail("nonce_present", "nonce is forbidden in a logout token")
    subject = _optional_string(claims, "sub")
    sid = _optional_string(claims, "sid")
    if subject is None and sid is None:
        raise _fail("sid_sub_missing", "neither sid nor sub")
    jti = _optional_string(claims, "jti")
    if jti is None:
        raise _fail("jti_invalid", "jti missing")
    return LogoutRequest(issuer=issuer, subject=subject, sid=sid, jti=jti, iat=iat)


def verify_logout_token_at_time(
    token: Any,
    *,
    get_key_set: Callable[[bool], KeySet],
    algorithms: Iterable[str],
    issuer: str,
    client_id: str,
    now: float,
    leeway: int = 60,
    max_age: int = 120,
) -> LogoutRequest:
    """Verify signature (pinned algorithms, JWKS refreshed once on an unknown ``kid``) and
    claims of a logout token.

    Raises:
        InvalidLogoutToken: for any failure; ``code`` says which check.
    """
    algorithms = tuple(algorithms)
    try:
        try:
            header, claims = verify_signature(token, get_key_set(False), algorithms)
        except InvalidIDToken as exc:
            if exc.code != "id_token_unknown_kid":
                raise
            header, claims = verify_signature(token, get_key_set(True), algorithms)
    except InvalidIDToken as exc:
        raise _fail(exc.code.removeprefix("id_token_"), "signature") from None
    return check_logout_claims_at_time(
        header, claims, issuer=issuer, client_id=client_id, now=now, leeway=leeway,
        max_age=max_age,
    )


def verify_logout_token(token: Any, **kwargs: Any) -> LogoutRequest:
    return verify_logout_token_at_time(token, now=time.time(), **kwargs)
