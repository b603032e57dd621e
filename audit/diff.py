"""Structured difference between two claim sets, for ``auth.claims.changed``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Claims that change at every sign-in and say nothing about the person.
VOLATILE_CLAIMS = frozenset(
    {"iat", "exp", "nbf", "auth_time", "nonce", "at_hash", "c_hash", "s_hash", "jti", "sid",
     "updated_at"}
)


def claims_diff(
    before: Mapping[str, Any], after: Mapping[str, Any], *, sensitive: Iterable[str] = ()
) -> dict[str, Any]:
    """``{"added": {...}, "removed": {...}, "changed": {...}}`` with list members spelled out.

    A list claim (e.g. groups) that changed is reported as ``{"added": [...], "removed": [...]}``;
    a sensitive claim as ``{"changed": True}`` without values. Empty when nothing changed.
    """
    sensitive = frozenset(sensitive)
    names = (set(before) | set(after)) - VOLATILE_CLAIMS
    added: dict[str, Any] = {}
    removed: dict[str, Any] = {}
    changed: dict[str, Any] = {}
    for name in sorted(names):
        if name not in before:
            added[name] = "[sensitive]" if name in sensitive else after[name]
        elif name not in after:
            removed[name] = "[sensitive]" if name in sensitive else before[name]
        elif before[name] != after[name]:
            old, new = before[name], after[name]
            if name in sensitive:
                changed[name] = {"changed": True}
            elif isinstance(old, list) and isinstance(new, list):
                changed[name] = {
                    "added": [v for v in new if v not in old],
                    "removed": [v for v in old if v not in new],
                }
            else:
                changed[name] = {"from": old, "to": new}
    result = {"added": added, "removed": removed, "changed": changed}
    return {k: v for k, v in result.items() if v}
