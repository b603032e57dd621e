"""Remove secrets from anything on its way to a log line or audit record."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from functools import lru_cache
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


def _looks_like_jwt(value: str) -> bool:
    """Three base64url segments whose first decodes to a JSON object, as a JOSE header does.

    The header test keeps dotted names such as ``secure_sso.backends.SSOBackend`` or
    ``jonathan.smithson.jr`` (same shape) readable in the audit trail.
    """
    if not _JWT.match(value):
        return False
    head = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    except (ValueError, binascii.Error):
        return False
    return decoded.lstrip().startswith(b"{")


def is_secret_name(name: Any) -> bool:
    """``Authorization``, ``HTTP_AUTHORIZATION``, ``id-token`` and ``ID_TOKEN`` alike."""
    return _is_secret_key(str(name))


# Every audit line asks this of the same few dozen field names, three times over (record,
# emit, the structlog processor); the answer depends on the name alone. Bounded: arbitrary
# names only evict.
@lru_cache(maxsize=1024)
def _is_secret_key(name: str) -> bool:
    key = name.lower().replace("-", "_")
    if key.startswith("http_"):
        key = key[5:]
    return key in SECRET_NAMES


def redact(value: Any, *, depth: int = 0) -> Any:
    """A copy of ``value`` with secret-named keys and token-shaped strings replaced."""
    if depth > MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if is_secret_name(k) else redact(v, depth=depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, depth=depth + 1) for v in value]
    if isinstance(value, str) and _looks_like_jwt(value):
        return REDACTED
    return value


def storable(value: Any, *, depth: int = 0) -> Any:
    """A JSON-safe copy: strings for unknown types, no NUL characters, finite numbers only.

    PostgreSQL's jsonb refuses ``\u0000`` and the canonical form refuses NaN, so both are
    removed here rather than failing the write.
    """
    if depth > MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {clean_text(str(k)): storable(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [storable(v, depth=depth + 1) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else str(value)
    if isinstance(value, float):
        # PostgreSQL's jsonb gives back -0.0 as 0.0 and large floats as integers; both
        # would change the canonical form, so they are stored in a form that survives.
        if not math.isfinite(value) or abs(value) >= 1e15:
            return repr(value)
        return value + 0.0 if value else 0.0
    return clean_text(str(value))


def clean_text(value: str) -> str:
    """No NUL (PostgreSQL refuses it) and no lone surrogates (UTF-8 cannot encode them)."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
