"""Build, store and log one event, with the failure policy."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError

from audit import chain
from audit.conf import audit_settings
from audit.context import request_fields
from audit.exceptions import AuditWriteError
from audit.logs import emit
from audit.redaction import clean_text, redact, storable

logger = logging.getLogger("audit")


def _user_fields(user: Any) -> dict[str, Any]:
    if user is None or not getattr(user, "is_authenticated", False):
        return {"user": None, "user_ref": "", "username": ""}
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
    if user is None and request is not None:
        user = getattr(request, "user", None)
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
    fields["details"] = storable(redact(details))
    # One flat log line: details beside the fixed fields (which win on a name clash).
    log_fields = {
        **fields["details"],
        **{k: v for k, v in fields.items() if k not in {"user", "event_type", "details"}},
    }
    log_fields["user"] = log_fields.pop("username") or None
    try:
        event = chain.append(fields)
    except (DatabaseError, AuditWriteError) as exc:
        # SECURITY: a lost audit write is itself an event: loud, on a separate logger.
        logger.critical("audit write failed for %s: %s", event_type, exc.__class__.__name__)
        emit(event_type, {**log_fields, "audit_write_failed": True})
        if audit_settings.may_fail_open(event_type):
            return None
        if isinstance(exc, AuditWriteError):
            raise
        raise AuditWriteError(f"could not record {event_type}") from exc
    emit(event_type, {**log_fields, "seq": event.seq})
    return event
