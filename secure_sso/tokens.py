"""The session's tokens: encrypted at rest, server-side only, refreshed before they expire.

Tokens are sealed with AES-256-GCM under a key derived (HKDF-SHA256) from
``TOKEN_ENCRYPTION_KEYS`` (default: ``SECRET_KEY`` and its fallbacks); the first key
seals, every key opens, so keys rotate like ``SECRET_KEY``. The issuer and ``sub`` are
the associated data: a sealed blob moved to another account's row does not open.

They are kept on the session's :class:`~secure_sso.models.SSOSession` row rather than in
the session dict (see its docstring), and :func:`get_access_token` is how a project's
views get a valid access token for calling APIs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.db import transaction
from django.http import HttpRequest

from secure_sso.conf import sso_settings
from secure_sso.exceptions import ProviderUnavailable, ReauthenticationRequired, SSOError
from secure_sso.sessions import sso_identity

logger = logging.getLogger("secure_sso")

VERSION = "v1"
#: Token fields kept; anything else the token endpoint returned is dropped.
FIELDS = ("access_token", "refresh_token", "id_token", "expires_at", "token_type", "scope")

_derived: dict[bytes, tuple[str, AESGCM]] = {}
#: Striped locks: one refresh at a time per session within the process, in bounded memory.
_refresh_locks = tuple(threading.Lock() for _ in range(64))


def _cipher(secret: bytes) -> tuple[str, AESGCM]:
    """``(key id, AESGCM)`` for a configured secret, derived once per process."""
    cached = _derived.get(secret)
    if cached is None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"secure_sso.tokens", info=b"v1"
        ).derive(secret)
        cached = (hashlib.sha256(key).hexdigest()[:8], AESGCM(key))
        _derived[secret] = cached
    return cached


def seal(data: dict[str, Any], *, issuer: str, subject: str) -> str:
    kid, cipher = _cipher(sso_settings.token_keys[0])
    nonce = os.urandom(12)
    body = json.dumps(data, separators=(",", ":")).encode()
    sealed = cipher.encrypt(nonce, body, f"{issuer}\0{subject}".encode())
    return f"{VERSION}.{kid}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(blob: str, *, issuer: str, subject: str) -> dict[str, Any] | None:
    """The sealed tokens, or ``None`` when the blob is missing, foreign or tampered with."""
    if not isinstance(blob, str):
        return None
    try:
        version, kid, payload = blob.split(".", 2)
        raw = base64.urlsafe_b64decode(payload.encode())
    except (ValueError, AttributeError):
        return None
    if version != VERSION or len(raw) < 29:
        return None
    for secret in sso_settings.token_keys:
        key_id, cipher = _cipher(secret)
        if key_id != kid:
            continue
        try:
            body = cipher.decrypt(raw[:12], raw[12:], f"{issuer}\0{subject}".encode())
        except InvalidTag:
            return None
        data = json.loads(body)
        return data if isinstance(data, dict) else None
    return None


def token_fields(token: dict[str, Any], *, now: float) -> dict[str, Any]:
    """What is kept of a token endpoint answer, with ``expires_at`` made absolute."""
    kept = {k: token[k] for k in FIELDS if isinstance(token.get(k), str | int | float)}
    expires_in = token.get("expires_in")
    if "expires_at" not in kept and isinstance(expires_in, int | float) and expires_in > 0:
        kept["expires_at"] = int(now + expires_in)
    return kept


def _identity(request: HttpRequest) -> tuple[str, str] | None:
    return sso_identity(request.session)


def _row(request: HttpRequest, *, for_update: bool = False) -> Any:
    from secure_sso.models import SSOSession

    key = request.session.session_key
    if not key:
        return None
    rows = SSOSession.objects.filter(session_key=key)
    if for_update:
        rows = rows.select_for_update()
    return rows.first()


def load(request: HttpRequest) -> dict[str, Any] | None:
    """This session's tokens, or ``None``."""
    identity = _identity(request)
    row = _row(request) if identity else None
    if row is None or not row.tokens:
        return None
    return unseal(row.tokens, issuer=identity[0], subject=identity[1])


def save(request: HttpRequest, data: dict[str, Any]) -> None:
    """Replace this session's tokens (after a provider step-up, for instance)."""
    identity = _identity(request)
    if identity is None:
        return
    from secure_sso.models import SSOSession

    SSOSession.objects.filter(session_key=request.session.session_key).update(
        tokens=seal(data, issuer=identity[0], subject=identity[1])
    )


def id_token_hint(request: HttpRequest) -> str | None:
    tokens = load(request)
    value = tokens.get("id_token") if tokens else None
    return value if isinstance(value, str) else None


def needs_refresh_at_time(tokens: dict[str, Any], *, now: float) -> bool:
    expires_at = tokens.get("expires_at")
    if not isinstance(expires_at, int | float):
        return False  # no expiry given: the provider says nothing, nothing to refresh
    return expires_at - sso_settings.REFRESH_BEFORE_EXPIRY <= now


def _lock_for(key: str) -> threading.Lock:
    return _refresh_locks[int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 64]


def refresh(request: HttpRequest, *, force: bool = False) -> dict[str, Any]:
    """Refresh this session's tokens with its refresh token (rotating it) and keep them.

    One refresh at a time per session: a thread lock within the process and a row lock
    (``SELECT ... FOR UPDATE``) across processes, so a rotated refresh token is never
    sent twice (providers treat reuse as theft and revoke the grant).

    Raises:
        ReauthenticationRequired: no tokens, no refresh token, or the provider refused
            the refresh (revoked); the session is ended before raising.
        ProviderUnavailable: the provider could not be reached (the session stays).
    """
    from secure_sso import client, flows

    identity = _identity(request)
    if identity is None:
        raise ReauthenticationRequired("no SSO session")
    key = request.session.session_key or ""
    ended_because = None
    with _lock_for(key), transaction.atomic():
        row = _row(request, for_update=True)
        tokens = unseal(row.tokens, issuer=identity[0], subject=identity[1]) if row else None
        now = time.time()
        if not tokens:
            ended_because = "tokens_missing"
        elif not force and not needs_refresh_at_time(tokens, now=now):
            return tokens  # another request refreshed while this one waited
        elif not isinstance(tokens.get("refresh_token"), str):
            ended_because = "no_refresh_token"
        else:
            try:
                answer = client.refresh_tokens(client.get_metadata(), tokens)
                if isinstance(answer.get("id_token"), str):
                    flows.verify_refreshed_id_token(
                        answer["id_token"], issuer=identity[0], subject=identity[1]
                    )
            except ProviderUnavailable:
                raise
            except SSOError as exc:
                ended_because = exc.code
            else:
                fresh = token_fields(answer, now=now)
                # A provider that does not rotate keeps the old refresh token valid.
                fresh.setdefault("refresh_token", tokens["refresh_token"])
                if tokens.get("id_token"):
                    fresh.setdefault("id_token", tokens["id_token"])
                row.tokens = seal(fresh, issuer=identity[0], subject=identity[1])
                row.save(update_fields=["tokens"])
    if ended_because:
        # Outside the transaction: the session's end and its audit record must stay.
        _end(request, ended_because)
    from secure_sso.signals import tokens_refreshed

    tokens_refreshed.send(sender=refresh, request=request, user=request.user)
    return fresh


def _end(request: HttpRequest, reason: str) -> NoReturn:
    from secure_sso import sessions

    sessions.end(request, event="session.refresh_refused", reason=reason)
    raise ReauthenticationRequired(reason, code="reauthentication_required")


def get_access_token(request: HttpRequest, *, refresh_with: Callable[..., Any] = refresh) -> str:
    """A valid access token for this session, refreshed first if it is about to expire.

    Raises:
        ReauthenticationRequired: the session has no usable tokens any more; it is
            ended first (audited as ``session.refresh_refused``) and
            ``SessionGuardMiddleware`` turns this into a redirect to sign in.
        ProviderUnavailable: a needed refresh could not reach the provider.
    """
    tokens = load(request)
    if not tokens or not isinstance(tokens.get("access_token"), str):
        _end(request, "tokens_missing")
    if needs_refresh_at_time(tokens, now=time.time()):
        if not sso_settings.REFRESH_TOKENS or not isinstance(tokens.get("refresh_token"), str):
            expires_at = tokens.get("expires_at")
            if isinstance(expires_at, int | float) and expires_at > time.time():
                return tokens["access_token"]
            # A session that cannot call APIs any more is not kept half-alive.
            _end(request, "access_token_expired")
        tokens = refresh_with(request)
    return str(tokens["access_token"])
