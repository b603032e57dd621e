"""Safe ``next=`` handling: only same-site relative paths survive."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.utils.http import url_has_allowed_host_and_scheme

MAX_NEXT_LENGTH = 2048


def safe_next_url(candidate: Any, default: str) -> str:
    """Return ``candidate`` if it is a same-site relative path, else ``default``.

    Absolute URLs are refused even for this host: the target is stored and echoed
    in a ``Location`` header later, so only a path, query and fragment are kept.
    Never raises.
    """
    if not isinstance(candidate, str) or not candidate or len(candidate) > MAX_NEXT_LENGTH:
        return default
    if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return default
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in candidate):
        return default
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return default
    if parts.scheme or parts.netloc:
        return default
    if not url_has_allowed_host_and_scheme(candidate, allowed_hosts=set()):
        return default
    return candidate
