"""Audit trail for django-secure-sso.

:func:`record` is the one way to write an audit event. This first version emits
each event as a structured log line (structlog) after redaction; the append-only,
hash-chained table arrives with the audit issue and keeps this signature.
"""

from __future__ import annotations

from typing import Any

__all__ = ["record"]


def record(event: str, **fields: Any) -> dict[str, Any]:
    """Record one audit event; returns the redacted fields that were written."""
    from audit.logs import emit

    return emit(event, fields)
