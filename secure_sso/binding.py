"""Pure helpers for binding a session to its browser and for session lifetimes.

No request or ORM here: the middleware passes strings and timestamps in, so the
decisions are testable directly and with hypothesis.
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
from functools import lru_cache

from django.utils.crypto import salted_hmac

#: Longest binding cookie value accepted; ours are 43 characters.
MAX_SECRET_LENGTH = 128
_BROWSERS = (
    ("edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("opera", re.compile(r"\b(?:OPR|Opera)/")),
    ("samsung", re.compile(r"\bSamsungBrowser/")),
    ("firefox", re.compile(r"\b(?:Firefox|FxiOS)/")),
    ("chrome", re.compile(r"\b(?:Chrome|Chromium|CriOS|HeadlessChrome)/")),
    ("safari", re.compile(r"\bSafari/")),
)
_SYSTEMS = (
    ("android", re.compile(r"Android")),
    ("ios", re.compile(r"iPhone|iPad|iPod")),
    ("windows", re.compile(r"Windows")),
    ("macos", re.compile(r"Macintosh|Mac OS X")),
    ("linux", re.compile(r"Linux|X11|CrOS")),
)


def new_binding_secret() -> str:
    """256 random bits for the binding cookie."""
    return secrets.token_urlsafe(32)


def binding_digest(secret: str, fingerprint: str = "") -> str:
    """What the session stores: a keyed hash, so a leaked session row does not reveal the cookie."""
    value = f"{secret}\n{fingerprint}"
    return salted_hmac("secure_sso.binding", value, algorithm="sha256").hexdigest()


def binding_matches(stored: object, secret: object, fingerprint: str = "") -> bool:
    """Whether the browser's binding cookie (and fingerprint) match the session's digest."""
    if not isinstance(stored, str) or not isinstance(secret, str):
        return False
    if not secret or len(secret) > MAX_SECRET_LENGTH or not secret.isascii():
        return False
    # SECURITY: constant-time comparison of the digests.
    return hmac.compare_digest(stored.encode(), binding_digest(secret, fingerprint).encode())


def user_agent_family(user_agent: str) -> str:
    """A coarse ``browser/os`` label that survives browser updates but not a change of browser."""
    return _family(user_agent[:512])


# Eleven searches cost a fifth of the session guard on every request, and a site sees few
# distinct User-Agent strings; the cache is bounded, so varying the header only evicts.
@lru_cache(maxsize=2048)
def _family(user_agent: str) -> str:
    browser = next((name for name, rx in _BROWSERS if rx.search(user_agent)), "other")
    system = next((name for name, rx in _SYSTEMS if rx.search(user_agent)), "other")
    return f"{browser}/{system}"


def expiry_reason_at_time(
    *, created_at: object, last_seen: object, now: float, idle: int, absolute: int
) -> str | None:
    """``"idle"``, ``"absolute"`` or ``None``; unreadable timestamps count as expired."""
    if not _is_timestamp(created_at):
        return "absolute"
    if not _is_timestamp(last_seen):
        return "idle"
    if absolute and now - created_at >= absolute:
        return "absolute"
    if idle and now - last_seen >= idle:
        return "idle"
    return None


def _is_timestamp(value: object) -> bool:
    # SECURITY: NaN and infinities compare false with every limit, so such a session
    # would never expire; they count as unreadable.
    return (
        not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    )
