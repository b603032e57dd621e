"""What an event learns from the request: client IP, user agent, request id, session hash.

The client IP is ``REMOTE_ADDR`` unless ``SECURE_SSO_AUDIT`` names a proxy header and how
many proxies to trust, so a client cannot forge it with its own ``X-Forwarded-For``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import uuid
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
    # A zone id ("fe80::1%eth0") is local routing detail, and the database drops it.
    candidate = str(candidate).strip().strip("[]").split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def request_id(request: Any) -> str:
    existing = getattr(request, REQUEST_ID_ATTR, None)
    if existing:
        return existing
    value = ""
    header = audit_settings.REQUEST_ID_HEADER
    if header:
        raw = str(request.META.get(header, ""))[:64]
        value = "".join(c for c in raw if c.isascii() and (c.isalnum() or c in "-_."))
    value = value or uuid.uuid4().hex
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
