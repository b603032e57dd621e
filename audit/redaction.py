"""Remove secrets from anything on its way to a log line or audit record."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"
#: Field names whose values are secrets wherever they appear.
SECRET_NAMES = frozenset(
    {"access_token", "refresh_token", "id_token", "code", "code_verifier", "client_secret",
     "password", "secret", "token", "otp", "otp_token", "state", "nonce", "authorization",
     "cookie", "sessionid", "session_key", "id_token_hint"}
)
#: Values that look like a JWT (three base64url segments).
_JWT = re.compile(r"^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*$")
MAX_DEPTH = 6


def redact(value: Any, *, depth: int = 0) -> Any:
    """A copy of ``value`` with secret-named keys and token-shaped strings replaced."""
    if depth > MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if str(k).lower() in SECRET_NAMES else redact(v, depth=depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, depth=depth + 1) for v in value]
    if isinstance(value, str) and _JWT.match(value):
        return REDACTED
    return value
