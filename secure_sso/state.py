"""Pending sign-ins: state, nonce and PKCE verifier, bound to the session, bounded, single-use.

A pending sign-in lives in the browser's server-side session under one key. Several
tabs may sign in at once (up to ``MAX_PENDING_LOGINS``; the oldest is dropped), each
entry expires after ``PENDING_LOGIN_TTL`` seconds, and :func:`consume` removes the
entry before anything else happens, so a replayed callback finds nothing.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from secure_sso.constants import SESSION_PENDING_KEY
from secure_sso.exceptions import CallbackTampered

#: Longest ``state`` accepted from a callback; ours are 43 characters.
MAX_STATE_LENGTH = 128


@dataclass(frozen=True)
class PendingLogin:
    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    next_url: str
    created_at: float


def new_pending_login_at_time(*, redirect_uri: str, next_url: str, now: float) -> PendingLogin:
    """Fresh random values: 256 bits each, from :mod:`secrets`."""
    return PendingLogin(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        # RFC 7636 4.1: 43 to 128 characters from the unreserved set.
        code_verifier=secrets.token_urlsafe(48),
        redirect_uri=redirect_uri,
        next_url=next_url,
        created_at=now,
    )


def _entries(session: Any) -> list[dict[str, Any]]:
    value = session.get(SESSION_PENDING_KEY)
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def store_at_time(
    session: Any, pending: PendingLogin, *, now: float, ttl: int, limit: int
) -> None:
    """Keep ``pending`` in ``session``, dropping expired entries and the oldest beyond ``limit``."""
    entries = [e for e in _entries(session) if now - float(e.get("created_at", 0)) < ttl]
    entries.append(asdict(pending))
    session[SESSION_PENDING_KEY] = entries[-max(1, limit):]


def consume_at_time(session: Any, state: Any, *, now: float, ttl: int) -> PendingLogin:
    """Remove and return the pending sign-in that ``state`` names.

    Raises:
        CallbackTampered: ``state`` is missing, unknown, already used or expired.
    """
    if (
        not isinstance(state, str)
        or not state
        or len(state) > MAX_STATE_LENGTH
        # Ours are ASCII; hmac.compare_digest raises TypeError on non-ASCII str.
        or not state.isascii()
    ):
        raise CallbackTampered("state missing or malformed", code="state_missing")
    entries = _entries(session)
    found = None
    kept = []
    for entry in entries:
        # SECURITY: constant-time comparison of each stored state.
        if found is None and hmac.compare_digest(
            str(entry.get("state", "")).encode("utf-8", "surrogatepass"), state.encode("ascii")
        ):
            found = entry
        else:
            kept.append(entry)
    if found is None:
        raise CallbackTampered("state unknown or already used", code="state_mismatch")
    # SECURITY: single use: the entry leaves the session before any other check.
    session[SESSION_PENDING_KEY] = kept
    try:
        pending = PendingLogin(**found)
    except TypeError:
        raise CallbackTampered("pending sign-in unreadable", code="state_mismatch") from None
    if now - pending.created_at >= ttl or pending.created_at > now + 60:
        raise CallbackTampered("pending sign-in expired", code="state_expired")
    return pending


def store(session: Any, pending: PendingLogin, *, ttl: int, limit: int) -> None:
    store_at_time(session, pending, now=time.time(), ttl=ttl, limit=limit)


def consume(session: Any, state: Any, *, ttl: int) -> PendingLogin:
    return consume_at_time(session, state, now=time.time(), ttl=ttl)
