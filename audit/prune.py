"""Pruning: delete the oldest events as one prefix of the chain, leaving a signed checkpoint.

The only code that deletes audit events. Everything else (the model, its queryset, and on
PostgreSQL the triggers of migration 0004) refuses deletes. On PostgreSQL pruning runs as
the role that owns the audit tables, through a database alias of its own
(``audit_prune --database audit_admin``): the triggers let a DELETE, or a checkpoint,
through for that role only; the role the site runs as can do neither, whatever it sets.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connections, router, transaction

from audit import anchors, chain, events
from audit.chain import GENESIS, _timestamp, verify_events
from audit.conf import audit_settings
from audit.exceptions import AuditConfigurationError, AuditError, AuditWriteError
from audit.logs import emit
from audit.models import AuditEvent, ChainHead, Checkpoint
from audit.redaction import redact, storable

logger = logging.getLogger("audit")

#: Set for the statements that write a checkpoint and delete the prefix. Not a gate (any
#: session may set it; the triggers let only the tables' owner through): it keeps a
#: DELETE typed by hand in the owner's own session from going through.
PRUNE_SWITCH = "secure_sso_audit.prune"


@dataclass(frozen=True)
class PrunePlan:
    """What :func:`prune` would remove: the prefix ``start_seq..after_seq`` (``count`` events)."""

    before: datetime
    start_seq: int
    after_seq: int

    @property
    def count(self) -> int:
        return max(0, self.after_seq - self.start_seq + 1)


def plan_prune(before: datetime, using: str | None = None) -> PrunePlan:
    """The longest prefix of the stored chain whose events are all older than ``before``.

    A prefix, never a hole: it stops at the first event created at or after ``before``,
    even if later events (from a server with a slow clock) are older.
    """
    using = using or router.db_for_write(AuditEvent)
    checkpoint = Checkpoint.objects.using(using).order_by("-after_seq").first()
    start_seq = checkpoint.after_seq + 1 if checkpoint else 1
    stored = AuditEvent.objects.using(using).filter(seq__gte=start_seq)
    first_kept = (
        stored.filter(created_at__gte=before).order_by("seq").values_list("seq", flat=True).first()
    )
    if first_kept is None:
        last = stored.order_by("-seq").values_list("seq", flat=True).first()
        after_seq = last if last is not None else start_seq - 1
    else:
        after_seq = first_kept - 1
    return PrunePlan(before=before, start_seq=start_seq, after_seq=after_seq)


def _require_owner(using: str) -> None:
    """On PostgreSQL: refuse up front unless this connection's role owns the audit tables.

    The triggers would refuse anyway, midway and less clearly: the site's own role (the
    ``default`` alias, usually) cannot prune.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, pg_get_userbyid(c.relowner), "
            "pg_has_role(current_user, c.relowner, 'MEMBER') "
            "FROM pg_class c WHERE c.oid IN (to_regclass(%s), to_regclass(%s))",
            [AuditEvent._meta.db_table, Checkpoint._meta.db_table],
        )
        rows = cursor.fetchall()
    for role, owner, owns in rows:
        if not owns:
            raise AuditError(
                f"refusing to prune: database role {role!r} (alias {using!r}) does not own the "
                f"audit tables; run audit_prune --database with an alias that connects as "
                f"{owner!r}"
            )


@contextmanager
def _prune_switch(using: str) -> Iterator[None]:
    """:data:`PRUNE_SWITCH` on for the statements inside, on PostgreSQL (see the constant)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL {PRUNE_SWITCH} = 'on'")
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL {PRUNE_SWITCH} = 'off'")


def _prune_delete(using: str, after_seq: int) -> int:
    """The only code that deletes audit events: every row with ``seq <= after_seq``.

    Raw SQL, because the model and its queryset refuse deletes; on PostgreSQL the
    triggers let it through only for the tables' owner, inside :func:`_prune_switch`.
    Call it inside :func:`prune`'s transaction, nowhere else.
    """
    connection = connections[using]
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    column = connection.ops.quote_name(AuditEvent._meta.get_field("seq").column)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {column} <= %s", [after_seq])  # noqa: S608
        return cursor.rowcount


def _record_pruned(using: str, **details: Any) -> AuditEvent:
    """Append ``audit.pruned`` on ``using``, in the prune's own transaction, and log it.

    What :func:`audit.record` does for an event without request or user, except that the
    event goes to ``using`` (``record`` appends through the router's alias, which on
    PostgreSQL is the site's role, on another connection: it would wait on the head this
    transaction holds). Any failure raises :class:`AuditWriteError` (never fails open).
    """
    fields: dict[str, Any] = {
        "event_type": events.AUDIT_PRUNED, "outcome": "success", "reason": "", "issuer": "",
        "subject": "", "user": None, "user_ref": "", "username": "",
        "details": storable(redact(details)),
    }
    log_fields = {**details, "outcome": "success", "reason": "", "issuer": "", "subject": "",
                  "user_ref": "", "user": None}
    try:
        event = chain.append(fields, using=using)
    except (DatabaseError, AuditWriteError) as exc:
        logger.critical("audit write failed for %s: %s", events.AUDIT_PRUNED,
                        exc.__class__.__name__)
        emit(events.AUDIT_PRUNED, {**log_fields, "audit_write_failed": True})
        if isinstance(exc, AuditWriteError):
            raise
        raise AuditWriteError(f"could not record {events.AUDIT_PRUNED}") from exc
    emit(events.AUDIT_PRUNED, {**log_fields, "seq": event.seq})
    return event


def _whole_anchored_ranges(plan: PrunePlan, using: str) -> PrunePlan:
    """Prune whole anchored ranges only, anchoring the prefix first when it reaches past
    the last anchor: a range the checkpoint cut in two could never be checked again, and
    the next anchor's range starts right after the checkpoint."""
    primary = anchors.readable_sink()
    published = primary.read() if primary else []
    if not published or published[-1].seq < plan.after_seq:
        anchors.publish("prune", using=using, up_to=plan.after_seq)
        return plan
    boundary = max((a.seq for a in published if a.seq <= plan.after_seq),
                   default=plan.start_seq - 1)
    return replace(plan, after_seq=boundary)


def prune(before: datetime, using: str | None = None) -> Checkpoint | None:
    """Delete the oldest events created before ``before`` as one prefix of the chain.

    In one transaction: lock the chain head, verify the prefix (tampered evidence is not
    pruned away silently), with anchoring on cut it at an anchor's end (anchoring it
    first when it goes past the last anchor), write a :class:`Checkpoint` holding the
    last pruned event's ``mac`` (where :func:`verify` starts from then on), delete the
    prefix, and record an ``audit.pruned`` event naming the checkpoint. Any failure,
    including that record, rolls the whole prune back. Returns the checkpoint, or ``None``
    when nothing is older.

    On PostgreSQL ``using`` must connect as the role that owns the audit tables (see the
    module's docstring).

    Raises:
        AuditError: the prefix to prune does not verify, or rows are missing from it, or
            (PostgreSQL) the connection's role does not own the audit tables.
        AuditWriteError: the ``audit.pruned`` event could not be recorded.
    """
    using = using or router.db_for_write(AuditEvent)
    if audit_settings.signing_key is None:
        raise AuditConfigurationError("SECURE_SSO_AUDIT has no SIGNING_KEYS[SIGNING_KEY_ID]")
    with transaction.atomic(using=using):
        _require_owner(using)
        ChainHead.objects.using(using).select_for_update().filter(pk=1).first()
        plan = plan_prune(before, using)
        if plan.count and audit_settings.anchoring:
            plan = _whole_anchored_ranges(plan, using)
        if plan.count == 0:
            return None
        latest = Checkpoint.objects.using(using).order_by("-after_seq").first()
        prefix = (
            AuditEvent.objects.using(using)
            .filter(seq__gte=plan.start_seq, seq__lte=plan.after_seq)
            .order_by("seq")
            .iterator(chunk_size=2000)
        )
        result = verify_events(
            prefix,
            keys=audit_settings.SIGNING_KEYS,
            start_seq=plan.start_seq,
            start_hash=latest.mac if latest else GENESIS,
        )
        if not result.ok:
            raise AuditError(f"refusing to prune: {result}")
        if result.checked != plan.count:
            missing = plan.start_seq + result.checked
            raise AuditError(f"refusing to prune: audit chain broken at seq {missing}: missing")
        last_mac = (
            AuditEvent.objects.using(using).filter(seq=plan.after_seq)
            .values_list("mac", flat=True).get()
        )
        checkpoint = Checkpoint(
            after_seq=plan.after_seq, mac=last_mac, pruned_before=before,
            pruned_count=plan.count,
        )
        with _prune_switch(using):
            checkpoint.save(using=using, force_insert=True)
            deleted = _prune_delete(using, plan.after_seq)
        if deleted != plan.count:
            raise AuditError(f"refusing to prune: expected {plan.count} rows, found {deleted}")
        _record_pruned(
            using,
            pruned_before=_timestamp(before),
            pruned_count=deleted,
            first_pruned_seq=plan.start_seq,
            checkpoint_after_seq=plan.after_seq,
            checkpoint_mac=last_mac,
        )
    return checkpoint
