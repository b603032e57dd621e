"""Build, store and log one event, with the failure policy.

Anonymous failures (``outcome="failure"``, a request, no authenticated user) go through
:mod:`audit.coalesce` first: past ``COALESCE_AFTER`` of a kind per window they are
counted, and one summary event is stored for them (:func:`record_summary`).
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

from django.db import DatabaseError, transaction

from audit import anchors, chain, coalesce
from audit.coalesce import COALESCER
from audit.conf import audit_settings
from audit.context import client_ip, request_fields
from audit.exceptions import AuditWriteError
from audit.logs import emit
from audit.redaction import clean_text, redact, scrub_text, storable

logger = logging.getLogger("audit")

_NO_USER = {"user": None, "user_ref": "", "username": ""}
_NO_REQUEST = {"client_ip": None, "user_agent": "", "request_id": "", "session_hash": ""}


def _user_fields(user: Any) -> dict[str, Any]:
    if user is None or not getattr(user, "is_authenticated", False):
        return dict(_NO_USER)
    return {"user": user, "user_ref": str(user.pk), "username": user.get_username()[:150]}


def record_event(
    event_type: str,
    *,
    request: Any,
    user: Any,
    outcome: str,
    reason: str,
    issuer: str | None,
    subject: str | None,
    details: dict[str, Any],
) -> Any:
    """Store and log one event; ``None`` when it was coalesced or failed open."""
    if user is None and request is not None:
        user = getattr(request, "user", None)
    decision, window = coalesce.RECORD, None
    if (
        outcome == "failure"
        and request is not None
        and not getattr(user, "is_authenticated", False)
        and (limits := coalesce.limits()).enabled
    ):
        # SECURITY: anonymous failures are what a flood is made of; past COALESCE_AFTER
        # per (client IP, type, reason) and window they are counted, not appended under
        # the chain head's lock (which every sign-in waits for).
        decision, window = coalesce.admit(
            str(event_type)[:64], str(reason or "")[:128], client_ip(request), limits
        )
        if decision is coalesce.COUNT:
            return None
    elif COALESCER.pending:
        coalesce.flush_due(time.time())
    fields: dict[str, Any] = {
        "event_type": str(event_type)[:64],
        "outcome": str(outcome)[:16],
        "reason": str(reason or "")[:128],
        "issuer": str(issuer or "")[:255],
        "subject": str(subject or "")[:255],
        **_user_fields(user),
        **request_fields(request),
    }
    for name, value in fields.items():
        if isinstance(value, str):
            fields[name] = clean_text(value)
    # Free text from outside (a reason built from an error, a User-Agent) also loses long
    # opaque runs; identifiers (subject, issuer, request id) are kept whole.
    for name in ("reason", "user_agent"):
        if fields.get(name):
            fields[name] = scrub_text(fields[name])
    fields["details"] = storable(redact(details))
    log_fields = _log_fields(fields)
    if decision is coalesce.ANNOUNCE:
        # Logged, not stored: the rest of this window is counted, then summarised.
        emit(event_type, {**log_fields, "coalescing": True})
        return None
    try:
        event = _append(event_type, fields, log_fields)
    except (DatabaseError, AuditWriteError) as exc:
        if audit_settings.may_fail_open(event_type):
            return None
        if isinstance(exc, AuditWriteError):
            raise
        raise AuditWriteError(f"could not record {event_type}") from exc
    if window is not None:
        # Counted against the window once committed (at once, outside a transaction).
        transaction.on_commit(partial(COALESCER.stored, window), using=event._state.db)
    return event


def record_summary(summary: coalesce.Summary) -> Any:
    """Store and log the one event that stands for a closed window's counted failures.

    Same type, outcome, reason and client IP as the failures; no user, user agent,
    request id or session (they differed, or the flushing request is someone else's);
    ``details``: ``coalesced_count``, ``window_start``, ``window_end`` (and
    ``many_addresses`` or ``client_network``). Never raises: a failed write is logged
    critical, with its count.
    """
    ip, event_type, reason = summary.key
    fields: dict[str, Any] = {
        "event_type": event_type,
        "outcome": "failure",
        "reason": clean_text(reason),
        "issuer": "",
        "subject": "",
        **_NO_USER,
        **_NO_REQUEST,
        "client_ip": ip,
        "details": summary.details(),
    }
    log_fields = _log_fields(fields)
    try:
        return _append(event_type, fields, log_fields)
    except (DatabaseError, AuditWriteError):
        return None


coalesce.set_writer(record_summary)


def _log_fields(fields: dict[str, Any]) -> dict[str, Any]:
    # One flat log line: details beside the fixed fields (which win on a name clash).
    log_fields = {
        **fields["details"],
        **{k: v for k, v in fields.items() if k not in {"user", "event_type", "details"}},
    }
    log_fields["user"] = log_fields.pop("username") or None
    return log_fields


def _append(event_type: str, fields: dict[str, Any], log_fields: dict[str, Any]) -> Any:
    try:
        event = chain.append(fields)
    except (DatabaseError, AuditWriteError) as exc:
        # SECURITY: a lost audit write is itself an event: loud, on a separate logger.
        logger.critical("audit write failed for %s: %s", event_type, exc.__class__.__name__)
        emit(event_type, {**log_fields, "audit_write_failed": True})
        raise
    emit(event_type, {**log_fields, "seq": event.seq})
    if audit_settings.anchoring:
        # Only committed events are anchored (at once, outside a transaction).
        transaction.on_commit(partial(anchors.after_append, event.seq), using=event._state.db)
    return event
