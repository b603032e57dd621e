"""The hash chain: canonical form, keyed HMAC, locked append, and verification.

Each event's ``mac`` is HMAC-SHA256, under the key named by ``key_id``, of the canonical
JSON of all its fields including ``seq`` and ``prev_hash`` (the previous event's ``mac``).
Changing a field breaks that event's ``mac``; deleting, inserting or swapping events
breaks the ``seq`` run or the ``prev_hash`` links. Appends lock the single
:class:`~audit.models.ChainHead` row, so concurrent writers form one line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connections, router, transaction

from audit.conf import audit_settings
from audit.exceptions import AuditConfigurationError
from audit.models import AuditEvent, ChainHead, Checkpoint

GENESIS = "0" * 64
#: Fields covered by the HMAC, in the canonical form's (sorted) order.
SIGNED_FIELDS = (
    "seq", "created_at", "event_type", "outcome", "reason", "user_ref", "username", "issuer",
    "subject", "client_ip", "user_agent", "request_id", "session_hash", "details",
    "prev_hash", "key_id",
)
# SQLite has no row locks; one process's threads are serialised here, other processes by
# SQLite's own write lock (use "transaction_mode": "IMMEDIATE").
_local_lock = threading.Lock()


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(fields: Mapping[str, Any]) -> bytes:
    """Deterministic bytes for ``fields``: sorted keys, no whitespace, UTF-8."""
    data = {name: fields.get(name) for name in SIGNED_FIELDS}
    data["created_at"] = _timestamp(data["created_at"])
    data["client_ip"] = data["client_ip"] or None
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def compute_mac(fields: Mapping[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(fields), hashlib.sha256).hexdigest()


def _event_fields(event: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in SIGNED_FIELDS}


def append(fields: dict[str, Any], *, using: str | None = None) -> AuditEvent:
    """Append one event after the current head, atomically.

    Raises:
        AuditConfigurationError: no signing key is configured.
        django.db.DatabaseError: the write failed (the caller applies the failure policy).
    """
    signing = audit_settings.signing_key
    if signing is None:
        raise AuditConfigurationError("SECURE_SSO_AUDIT has no SIGNING_KEYS[SIGNING_KEY_ID]")
    key_id, key = signing
    using = using or router.db_for_write(AuditEvent)
    with _local_lock, transaction.atomic(using=using):
        head = ChainHead.objects.using(using).select_for_update().filter(pk=1).first()
        if head is None:
            head = ChainHead(pk=1, seq=0, mac=GENESIS)
            head.save(using=using, force_insert=True)
        event = AuditEvent(
            **fields,
            seq=head.seq + 1,
            created_at=datetime.now(UTC),
            prev_hash=head.mac or GENESIS,
            key_id=key_id,
        )
        event.mac = compute_mac(_event_fields(event), key)
        event._appending = True  # type: ignore[attr-defined]
        event.save(using=using, force_insert=True)
        ChainHead.objects.using(using).filter(pk=1).update(seq=event.seq, mac=event.mac)
    return event


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain verified: {self.checked} events"
        return f"audit chain broken at seq {self.first_bad_seq}: {self.problem}"


def verify_events(
    events: Iterable[AuditEvent],
    *,
    keys: Mapping[str, bytes],
    start_seq: int = 1,
    start_hash: str = GENESIS,
    head: tuple[int, str] | None = None,
) -> VerifyResult:
    """Walk ``events`` (in ``seq`` order) and name the first one that breaks the chain."""
    expected_seq, expected_prev, checked = start_seq, start_hash, 0
    for event in events:
        if event.seq != expected_seq:
            problem = (
                f"expected seq {expected_seq}, found {event.seq} "
                f"({'missing events' if event.seq > expected_seq else 'duplicate or reordered'})"
            )
            return VerifyResult(False, checked, expected_seq, problem)
        if not hmac.compare_digest(event.prev_hash, expected_prev):
            return VerifyResult(False, checked, event.seq, "previous hash does not match")
        key = keys.get(event.key_id)
        if key is None:
            return VerifyResult(False, checked, event.seq, f"unknown key id {event.key_id!r}")
        try:
            mac = compute_mac(_event_fields(event), key)
        except (TypeError, ValueError):
            return VerifyResult(False, checked, event.seq, "fields cannot be serialised")
        if not hmac.compare_digest(event.mac, mac):
            return VerifyResult(False, checked, event.seq, "HMAC does not match its fields")
        expected_seq, expected_prev, checked = event.seq + 1, event.mac, checked + 1
    if head is not None and head[0] >= expected_seq:
        problem = f"chain head is at seq {head[0]}: events after {expected_seq - 1} missing"
        return VerifyResult(False, checked, expected_seq, problem)
    return VerifyResult(True, checked)


def iter_events(using: str | None = None, *, after_seq: int = 0) -> Iterator[AuditEvent]:
    using = using or router.db_for_read(AuditEvent)
    return (
        AuditEvent.objects.using(using).filter(seq__gt=after_seq).order_by("seq").iterator(
            chunk_size=2000
        )
    )


def verify(using: str | None = None) -> VerifyResult:
    """Verify the whole stored chain from the genesis or the last prune checkpoint."""
    using = using or router.db_for_read(AuditEvent)
    checkpoint = Checkpoint.objects.using(using).order_by("-after_seq").first()
    start_seq, start_hash = (
        (checkpoint.after_seq + 1, checkpoint.mac) if checkpoint else (1, GENESIS)
    )
    head = ChainHead.objects.using(using).filter(pk=1).values_list("seq", "mac").first()
    return verify_events(
        iter_events(using, after_seq=start_seq - 1),
        keys=audit_settings.SIGNING_KEYS,
        start_seq=start_seq,
        start_hash=start_hash,
        head=head,
    )


def event_verifies(event: AuditEvent) -> bool:
    """This event's own HMAC (for the admin); links are checked by :func:`verify`."""
    key = audit_settings.SIGNING_KEYS.get(event.key_id)
    if key is None:
        return False
    return hmac.compare_digest(event.mac, compute_mac(_event_fields(event), key))


def vendor(using: str | None = None) -> str:
    return connections[using or router.db_for_write(AuditEvent)].vendor
