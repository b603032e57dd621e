"""What an event learns from the request: client IP, user agent, request id, session hash.

The client IP is ``REMOTE_ADDR`` unless ``SECURE_SSO_AUDIT`` names a proxy header and how
many proxies to trust, so a client cannot forge it with its own ``X-Forwarded-For``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from functools import lru_cache
from typing import Any

from audit.conf import audit_settings

REQUEST_ID_ATTR = "audit_request_id"


def client_ip(request: Any) -> str | None:
    meta = request.META
    candidate = meta.get("REMOTE_ADDR", "")
    header, hops = audit_settings.CLIENT_IP_HEADER, audit_settings.TRUSTED_PROXY_COUNT
    if header and hops > 0:
        chain = [part.strip() for part in str(meta.get(header, "")).split(",") if part.strip()]
        # The last `hops` entries were added by our own proxies; the one before is the client.
        if len(chain) >= hops:
            candidate = chain[-hops]
    candidate = str(candidate)
    if len(candidate) > _MAX_CACHED_ADDRESS:
        return _parse_ip(candidate)  # padded or junk: parsed, never cached
    return _normalised_ip(candidate)


#: Longest candidate kept in the cache: an IPv6 address with brackets and a zone id.
_MAX_CACHED_ADDRESS = 64


def _parse_ip(candidate: str) -> str | None:
    """The address in canonical form, or ``None``."""
    # A zone id ("fe80::1%eth0") is local routing detail, and the database drops it.
    candidate = candidate.strip().strip("[]").split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


#: Parsing with :mod:`ipaddress` is most of what :func:`client_ip` costs on every request,
#: and a server sees the same few addresses (its proxies, its busiest clients) again and
#: again. Bounded in entries and in entry size: a flood of distinct addresses only evicts.
_normalised_ip = lru_cache(maxsize=1024)(_parse_ip)


_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def uuid4_hex(random16: bytes) -> str:
    """``uuid.UUID(bytes=random16, version=4).hex``, without building a ``UUID`` object
    (a third of the time of :func:`uuid.uuid4`; a request id is made for every request)."""
    value = int.from_bytes(random16, "big")
    return f"{(value & _UUID4_CLEAR) | _UUID4_SET:032x}"


def new_request_id() -> str:
    """``uuid.uuid4().hex``: 122 random bits, version 4, RFC 4122 variant, 32 hex digits."""
    return uuid4_hex(os.urandom(16))


def request_id(request: Any) -> str:
    existing = getattr(request, REQUEST_ID_ATTR, None)
    if existing:
        return existing
    value = ""
    header = audit_settings.REQUEST_ID_HEADER
    if header:
        raw = str(request.META.get(header, ""))[:64]
        value = "".join(c for c in raw if c.isascii() and (c.isalnum() or c in "-_."))
    value = value or new_request_id()
    setattr(request, REQUEST_ID_ATTR, value)
    return value


def session_hash(request: Any) -> str:
    """A keyed hash of the session key: links events of one session, never reveals the key."""
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None) if session is not None else None
    signing = audit_settings.signing_key
    if not key or signing is None:
        return ""
    return hmac.new(signing[1], b"session:" + key.encode(), hashlib.sha256).hexdigest()


def request_fields(request: Any) -> dict[str, Any]:
    if request is None:
        return {}
    return {
        "client_ip": client_ip(request),
        "user_agent": str(request.META.get("HTTP_USER_AGENT", ""))[:512],
        "request_id": request_id(request),
        "session_hash": session_hash(request),
    }
