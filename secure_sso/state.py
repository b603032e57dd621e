"""Pending sign-ins: state, nonce and PKCE verifier, bound to the session, bounded, single-use.

A pending sign-in lives in the browser's server-side session under one key. Several
tabs may sign in at once (up to ``MAX_PENDING_LOGINS``; the oldest is dropped), each
entry expires after ``PENDING_LOGIN_TTL`` seconds, and :func:`consume` removes the
entry before anything else happens, so a replayed callback finds nothing.

A pending entry is either a sign-in (``purpose="login"``) or a provider step-up
(``purpose="step_up"``) of the account already signed in, whose issuer and ``sub``
it records. Entries stored before ``purpose`` existed read as sign-ins.
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
PURPOSE_LOGIN = "login"
PURPOSE_STEP_UP = "step_up"
#: A silent ``prompt=none`` check that the signed-in account is still signed in there.
PURPOSE_REVALIDATE = "revalidate"
PURPOSES = frozenset({PURPOSE_LOGIN, PURPOSE_STEP_UP, PURPOSE_REVALIDATE})


@dataclass(frozen=True)
class PendingLogin:
    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    next_url: str
    created_at: float
    purpose: str = PURPOSE_LOGIN
    #: For a step-up: the issuer and ``sub`` of the session that started it.
    issuer: str = ""
    subject: str = ""

    @property
    def is_step_up(self) -> bool:
        return self.purpose == PURPOSE_STEP_UP

    @property
    def is_revalidation(self) -> bool:
        return self.purpose == PURPOSE_REVALIDATE

    @property
    def for_signed_in_account(self) -> bool:
        """Started by a signed-in session for its own account (step-up, re-validation)."""
        return self.purpose != PURPOSE_LOGIN


def new_pending_login_at_time(
    *,
    redirect_uri: str,
    next_url: str,
    now: float,
    purpose: str = PURPOSE_LOGIN,
    issuer: str = "",
    subject: str = "",
) -> PendingLogin:
    """Fresh random values: 256 bits each, from :mod:`secrets`."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown pending sign-in purpose {purpose!r}")
    if purpose != PURPOSE_LOGIN and not (issuer and subject):
        raise ValueError(f"a {purpose.replace('_', '-')} needs the signed-in issuer and subject")
    return PendingLogin(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        # RFC 7636 4.1: 43 to 128 characters from the unreserved set.
        code_verifier=secrets.token_urlsafe(48),
        redirect_uri=redirect_uri,
        next_url=next_url,
        created_at=now,
        purpose=purpose,
        issuer=issuer,
        subject=subject,
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
    if (
        not isinstance(pending.purpose, str)
        or pending.purpose not in PURPOSES
        or not isinstance(pending.issuer, str)
        or not isinstance(pending.subject, str)
        or (pending.for_signed_in_account and not (pending.issuer and pending.subject))
    ):
        # SECURITY: fail closed. An entry that is neither a plain sign-in nor a complete
        # step-up is never treated as a sign-in.
        raise CallbackTampered("pending sign-in unreadable", code="state_mismatch")
    if now - pending.created_at >= ttl or pending.created_at > now + 60:
        raise CallbackTampered("pending sign-in expired", code="state_expired")
    return pending


def store(session: Any, pending: PendingLogin, *, ttl: int, limit: int) -> None:
    store_at_time(session, pending, now=time.time(), ttl=ttl, limit=limit)


def consume(session: Any, state: Any, *, ttl: int) -> PendingLogin:
    return consume_at_time(session, state, now=time.time(), ttl=ttl)
