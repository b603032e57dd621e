"""Pruning: delete the oldest events as one prefix of the chain, leaving a signed checkpoint.

The only code that deletes audit events. Everything else (the model, its queryset, and on
PostgreSQL a trigger) refuses deletes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connections, router, transaction

from audit import events, record
from audit.chain import GENESIS, _timestamp, verify_events
from audit.conf import audit_settings
from audit.exceptions import AuditConfigurationError, AuditError
from audit.models import AuditEvent, ChainHead, Checkpoint


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


def _prune_delete(using: str, after_seq: int) -> int:
    """The only code that deletes audit events: every row with ``seq <= after_seq``.

    Raw SQL, because the model and its queryset refuse deletes; on PostgreSQL the
    append-only trigger lets it through only with ``secure_sso_audit.prune`` set for
    this transaction. Call it inside :func:`prune`'s transaction, nowhere else.
    """
    connection = connections[using]
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    column = connection.ops.quote_name(AuditEvent._meta.get_field("seq").column)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL secure_sso_audit.prune = 'on'")
        cursor.execute(f"DELETE FROM {table} WHERE {column} <= %s", [after_seq])  # noqa: S608
        deleted = cursor.rowcount
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL secure_sso_audit.prune = 'off'")
    return deleted


def prune(before: datetime, using: str | None = None) -> Checkpoint | None:
    """Delete the oldest events created before ``before`` as one prefix of the chain.

    In one transaction: lock the chain head, verify the prefix (tampered evidence is not
    pruned away silently), write a :class:`Checkpoint` holding the last pruned event's
    ``mac`` (where :func:`verify` starts from then on), delete the prefix, and record an
    ``audit.pruned`` event naming the checkpoint. Any failure, including that record,
    rolls the whole prune back. Returns the checkpoint, or ``None`` when nothing is older.

    Raises:
        AuditError: the prefix to prune does not verify, or rows are missing from it.
        AuditWriteError: the ``audit.pruned`` event could not be recorded.
    """
    using = using or router.db_for_write(AuditEvent)
    if audit_settings.signing_key is None:
        raise AuditConfigurationError("SECURE_SSO_AUDIT has no SIGNING_KEYS[SIGNING_KEY_ID]")
    with transaction.atomic(using=using):
        ChainHead.objects.using(using).select_for_update().filter(pk=1).first()
        plan = plan_prune(before, using)
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
        checkpoint.save(using=using, force_insert=True)
        deleted = _prune_delete(using, plan.after_seq)
        if deleted != plan.count:
            raise AuditError(f"refusing to prune: expected {plan.count} rows, found {deleted}")
        record(
            events.AUDIT_PRUNED,
            pruned_before=_timestamp(before),
            pruned_count=deleted,
            first_pruned_seq=plan.start_seq,
            checkpoint_after_seq=plan.after_seq,
            checkpoint_mac=last_mac,
        )
    return checkpoint
