"""Audit trail for django-secure-sso.

:func:`record` is the one way to write an audit event: it redacts, appends the event to
the hash chain (:mod:`audit.chain`) and emits the same event as a structured log line.
"""

from __future__ import annotations

from typing import Any

__all__ = ["record"]


def record(
    event_type: str,
    *,
    request: Any = None,
    user: Any = None,
    outcome: str = "success",
    reason: str = "",
    issuer: str | None = None,
    subject: str | None = None,
    **details: Any,
) -> Any:
    """Record one audit event.

    Args:
        event_type: a dotted name from :mod:`audit.events` (or the project's own).
        request: the current request, for client IP, user agent, request id, session hash.
        user: the user concerned (defaults to ``request.user`` when authenticated).
        outcome: ``"success"`` or ``"failure"``.
        reason: a short machine-readable reason (an error code), never a secret.
        issuer, subject: the provider identity concerned.
        **details: anything else; redacted before it is stored or logged.

    Returns:
        The stored :class:`audit.models.AuditEvent`, or ``None`` when a fail-open event
        could not be stored, or an anonymous failure was counted rather than stored
        (:mod:`audit.coalesce`).

    Raises:
        audit.exceptions.AuditWriteError: the event could not be stored and is not
            allowed to fail open (every ``auth.*``, ``session.*``, ``mfa.*``, ``sso.*``).
    """
    from audit.recording import record_event

    return record_event(
        event_type, request=request, user=user, outcome=outcome, reason=reason,
        issuer=issuer, subject=subject, details=details,
    )
